"""Where mrt2 runs and in which precision, and the codec's CPU paths: every convolution of the bf16
and/or prepacked codec, run in its real streaming context (forward hooks), against float32 with
the original float32 weights, within its derived bound (tests/tolerance.py, low_precision_bound)."""

import platform
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from scorewright.backends.mrt2 import devices  # noqa: E402
from scorewright.backends.mrt2 import weights as W  # noqa: E402
from scorewright.backends.mrt2.packed_convs import PackedConv, conv_packing_works, pack_codec  # noqa: E402
from scorewright.backends.mrt2.spectrostream import TINY_SS, SpectroStreamDecoder  # noqa: E402

from .tolerance import BF16, EPS32, low_precision_bound  # noqa: E402


def cpuinfo_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(platform.system() != "Linux" or platform.machine() != "x86_64",
                    reason="reads /proc/cpuinfo of an x86 Linux machine")
def test_native_bf16_is_detected_from_the_cpu_flags():
    flags = cpuinfo_flags()
    assert devices.cpu_native_bf16() == bool({"avx512_bf16", "amx_bf16"} & flags)
    cpu = torch.device("cpu")
    expect = torch.bfloat16 if devices.cpu_native_bf16() else torch.float32
    assert devices.model_dtype(cpu) == expect and devices.codec_dtype(cpu, expect) == expect


def test_a_requested_precision_wins_and_a_wrong_one_is_named():
    cpu = torch.device("cpu")
    assert devices.model_dtype(cpu, "fp32") == torch.float32
    assert devices.model_dtype(cpu, "bf16") == torch.bfloat16
    assert devices.codec_dtype(cpu, torch.float32) == torch.float32   # fp32 model: fp32 codec
    assert devices.codec_dtype(torch.device("cuda"), torch.bfloat16) == torch.float32
    with pytest.raises(ValueError, match="dtype must be one of fp32, bf16, fp16, got 'int3'"):
        devices.model_dtype(cpu, "int3")
    assert devices.pick_device("cpu") == cpu


def conv_abs_sum(conv: torch.nn.Module, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None):
    """sum |x_i w_i| + |b| for every output of `conv` (float64)."""
    f = torch.nn.functional
    x, w = x.double().abs(), w.double().abs()
    if isinstance(conv, torch.nn.ConvTranspose2d):
        y = f.conv_transpose2d(x, w, stride=conv.stride)
    else:
        y = f.conv2d(x, w, stride=conv.stride)
    return y + b.double().abs()[:, None, None] if b is not None else y


@pytest.mark.parametrize("dtype,pack", [(torch.bfloat16, False), (torch.bfloat16, True),
                                        (torch.float32, True)])
def test_every_convolution_of_the_codec_is_float32_up_to_its_rounding(dtype, pack):
    """bf16 and/or oneDNN-prepacked convolutions (packed_convs.py) against float32 nn.Conv2d."""
    if pack and not conv_packing_works(dtype):
        pytest.skip("this PyTorch build cannot prepack oneDNN convolutions")
    ref = W.randomise(SpectroStreamDecoder(TINY_SS), std=0.2, seed=3)
    low = W.randomise(SpectroStreamDecoder(TINY_SS), std=0.2, seed=3).conv_dtype(dtype)
    if pack:
        assert pack_codec(low) and type(low.first.conv) is PackedConv
    kinds = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    convs = {n: m for n, m in ref.named_modules() if isinstance(m, kinds)}
    worst, checked = [], []

    def check(name):
        def hook(mod, inputs, out):
            x, r = inputs[0], convs[name]
            assert x.dtype == out.dtype == dtype
            want = r(x.float()).double()                       # the same input, float32 weights
            fan_in = r.weight[0].numel() if isinstance(r, torch.nn.Conv2d) else r.weight.shape[0] * \
                r.weight[0, 0].numel()
            eps = BF16 if dtype == torch.bfloat16 else EPS32
            bound = low_precision_bound(conv_abs_sum(r, x, r.weight, r.bias), fan_in, eps)
            err = (out.double() - want).abs()
            assert (err <= bound).all(), f"{name}: {float((err - bound).max()):.2e} over its bound"
            worst.append(float((err / bound.clamp(min=1e-30)).max()))
            checked.append(name)
        return hook

    hooks = [m.register_forward_hook(check(n)) for n, m in low.named_modules() if n in convs]
    codes = torch.randint(0, TINY_SS.codebook, (2, 5, 12), generator=torch.Generator().manual_seed(0))
    audio = torch.cat([low.decode(codes[:, i: i + 1]) for i in range(codes.shape[1])], dim=1)
    for h in hooks:
        h.remove()
    assert set(checked) == set(convs) and audio.dtype == torch.float32 and torch.isfinite(audio).all()
    assert max(worst) > 0                                    # something was rounded
