"""The official MRT2 checkpoint layout (flat safetensors keys, '/'-separated, JAX kernel shapes) and
the mapping onto our modules. Every official key is listed once here; loading, verifying and writing
test checkpoints all use that one table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import SIZES, MRT2Config, config_from_json
from .depthformer import Depthformer
from .spectrostream import (
    CausalConv,
    CausalConvTranspose,
    SpectroStreamConfig,
    SpectroStreamDecoder,
    SpectroStreamEncoder,
    StridedConv,
    ss_config_from_json,
)

# safetensors metadata keys holding the shapes of a non-official (test) checkpoint
META_MODEL, META_CODEC = "scorewright_mrt2_config", "scorewright_spectrostream_config"

DF = "params/depthformer"
ENC = f"{DF}/encoder/body/layers_1"


class CheckpointError(ValueError):
    """A checkpoint file that does not match the expected layout; the message says what to fix."""


@dataclass(frozen=True)
class Entry:
    key: str            # official key
    param: str          # our state_dict name
    kind: str           # copy | dense ([in, out]) | heads_in ([in, H, hd]) | heads_out ([d, H, hd])
    shape: tuple[int, ...]  # official shape


def _attention(prefix: str, ours: str, d: int, d_src: int, h: int, hd: int, sinks: int) -> Iterator[Entry]:
    a = f"{prefix}/attention"
    yield Entry(f"{a}/query_projection/kernel", f"{ours}.attn.q.weight", "heads_in", (d, h, hd))
    yield Entry(f"{a}/key_projection/kernel", f"{ours}.attn.k.weight", "heads_in", (d_src, h, hd))
    yield Entry(f"{a}/value_projection/kernel", f"{ours}.attn.v.weight", "heads_in", (d_src, h, hd))
    yield Entry(f"{a}/per_dim_scale", f"{ours}.attn.per_dim_scale", "copy", (hd,))
    if sinks:
        yield Entry(f"{a}/sink_key_embeddings", f"{ours}.attn.sink_k", "copy", (sinks, h, hd))
        yield Entry(f"{a}/sink_value_embeddings", f"{ours}.attn.sink_v", "copy", (sinks, h, hd))
    yield Entry(f"{prefix}/output_projection/kernel", f"{ours}.attn.out.weight", "heads_out", (d, h, hd))
    yield Entry(f"{prefix}/pre_norm/scale", f"{ours}.pre_norm.scale", "copy", (d,))
    yield Entry(f"{prefix}/post_norm/scale", f"{ours}.post_norm.scale", "copy", (d,))


def _stack(prefix: str, ours: str, spec, sinks: int, d_src: int | None) -> Iterator[Entry]:
    d, h, hd = spec.d_model, spec.num_heads, spec.head_dim
    for i in range(spec.num_layers):
        p, o = f"{prefix}/x_layers_{i}", f"{ours}.{i}"
        yield from _attention(f"{p}/self_attention", f"{o}.self_attn", d, d, h, hd, sinks)
        if d_src:
            yield from _attention(f"{p}/cross_attention", f"{o}.cross_attn", d, d_src, h, hd, sinks)
        yield Entry(f"{p}/ffn/ffn_layer1/kernel", f"{o}.ffn.w1.weight", "dense", (d, spec.d_ff))
        yield Entry(f"{p}/ffn/ffn_layer1/bias", f"{o}.ffn.w1.bias", "copy", (spec.d_ff,))
        yield Entry(f"{p}/ffn/ffn_layer2/kernel", f"{o}.ffn.w2.weight", "dense", (spec.d_ff, d))
        yield Entry(f"{p}/ffn/ffn_layer2/bias", f"{o}.ffn.w2.bias", "copy", (d,))
        yield Entry(f"{p}/ffn/pre_norm/scale", f"{o}.ffn.pre_norm.scale", "copy", (d,))
        yield Entry(f"{p}/ffn/post_norm/scale", f"{o}.ffn.post_norm.scale", "copy", (d,))


def depthformer_layout(cfg: MRT2Config) -> list[Entry]:
    t, d, e = cfg.temporal, cfg.depth, cfg.encoder_dim
    mc = f"{ENC}/branched_mulan_embedder/mulan_embedder"
    out = [
        Entry(f"{mc}/mulan_dequantizer/embedding", "encoder.mc_embed.weight", "copy",
              (cfg.musiccoca_vocab, cfg.musiccoca_dim)),
        Entry(f"{mc}/depth_input_adapter/kernel", "encoder.mc_proj.weight", "dense", (cfg.musiccoca_dim, e)),
        Entry(f"{ENC}/branched_regular_embedder/regular_embedder/embedding", "encoder.regular_embed.weight",
              "copy", (cfg.regular_vocab, e)),
        Entry(f"{DF}/encoder/body/encoder_ln/scale", "encoder.norm.weight", "copy", (e,)),
        Entry(f"{DF}/encoder/body/encoder_ln/bias", "encoder.norm.bias", "copy", (e,)),
        Entry(f"{DF}/decoder/decoder_embedding/embedding/embedding", "embed.weight", "copy",
              (cfg.vocab, t.d_model)),
    ]
    out += _stack(f"{DF}/decoder/temporal_body/transformer", "temporal", t, cfg.num_sinks, e)
    depth = f"{DF}/decoder/depth_body"
    if t.d_model != d.d_model:
        out.append(Entry(f"{depth}/depth_input_adapter/kernel", "adapter.weight", "dense",
                         (t.d_model, d.d_model)))
    out += _stack(f"{depth}/transformer", "depth", d, 0, None)
    out += [
        Entry(f"{depth}/final_ln/scale", "final_norm.weight", "copy", (d.d_model,)),
        Entry(f"{depth}/final_ln/bias", "final_norm.bias", "copy", (d.d_model,)),
        Entry(f"{depth}/to_logits/kernel", "to_logits.weight", "dense", (d.d_model, cfg.vocab)),
        Entry(f"{depth}/to_logits/bias", "to_logits.bias", "copy", (cfg.vocab,)),
    ]
    return out


SS = "params/soundstream"


def _conv(key: str, ours: str, conv: CausalConv | CausalConvTranspose | StridedConv) -> list[Entry]:
    """A conv's kernel [kt, kf, in, out] and bias; transposed convs keep their bias outside."""
    w = conv.conv.weight
    if isinstance(conv, CausalConvTranspose):
        c_in, c_out, kt, kf = w.shape
        return [Entry(f"{key}/conv/kernel", f"{ours}.conv.weight", "conv_t", (kt, kf, c_in, c_out)),
                Entry(f"{key}/conv/bias", f"{ours}.bias", "copy", (c_out,))]
    c_out, c_in, kt, kf = w.shape
    return [Entry(f"{key}/conv/kernel", f"{ours}.conv.weight", "conv", (kt, kf, c_in, c_out)),
            Entry(f"{key}/conv/bias", f"{ours}.conv.bias", "copy", (c_out,))]


def spectrostream_layout(dec: SpectroStreamDecoder) -> list[Entry]:
    """Official keys of the SpectroStream quantizer codebooks and decoder."""
    d = f"{SS}/decoder"
    out = [Entry(f"{SS}/quantizer/embedding", "codebooks", "copy", tuple(dec.codebooks.shape))]
    out += _conv(f"{d}/input_layer/conv1x1_first", "first", dec.first)
    out += _conv(f"{d}/input_layer/shortcut_layer/conv1x1_b1", "b1", dec.b1)
    out += _conv(f"{d}/input_layer/shortcut_layer/conv1x1_b2", "b2", dec.b2)
    out += _conv(f"{d}/input_layers_residual_unit/conv2d_3x3_a", "input_unit.first", dec.input_unit.first)
    out += _conv(f"{d}/input_layers_residual_unit/conv2d_3x3", "input_unit.second", dec.input_unit.second)
    for i, blk in enumerate(dec.blocks):
        kt, kf = blk.first.conv.weight.shape[-2:]
        out += _conv(f"{d}/decoder_{i}/conv2dtranspose_{kt}x{kf}", f"blocks.{i}.first", blk.first)
        out += _conv(f"{d}/decoder_{i}/conv2d_3x3", f"blocks.{i}.second", blk.second)
        if blk.shortcut is not None:
            out += _conv(f"{d}/decoder_{i}/shortcut_layer/conv1x1", f"blocks.{i}.shortcut", blk.shortcut)
    out += _conv(f"{d}/output_layer/base_conv_last", "out_conv", dec.out_conv)
    return out


ENCODER = "params/encoder"   # in resources/spectrostream/encoder.safetensors


def spectrostream_encoder_layout(enc: SpectroStreamEncoder) -> list[Entry]:
    """Official keys of the SpectroStream encoder (its codebooks are the checkpoint's quantizer)."""
    e = ENCODER
    out = [Entry(f"{SS}/quantizer/embedding", "codebooks", "copy", tuple(enc.codebooks.shape))]
    out += _conv(f"{e}/base_conv_first", "base", enc.base)
    named = [(f"encoder_{i}", f"blocks.{i}", b) for i, b in enumerate(enc.blocks)]
    for name, ours, blk in named + [("bottleneck", "bottleneck", enc.bottleneck)]:
        kt, kf = blk.second.conv.weight.shape[-2:]
        out += _conv(f"{e}/{name}/conv2d_3x3", f"{ours}.first", blk.first)
        out += _conv(f"{e}/{name}/conv2d_{kt}x{kf}_a", f"{ours}.second", blk.second)
        if blk.shortcut is not None:
            out += _conv(f"{e}/{name}/shortcut_layer/conv1x1", f"{ours}.shortcut", blk.shortcut)
    for key, ours in (("conv1x1_last", "last"), ("shortcut_layer/conv1x1_b1", "b1"),
                      ("shortcut_layer/conv1x1_b2", "b2")):
        lin = getattr(enc, ours)
        out += [Entry(f"{e}/output_convs/{key}/conv/kernel", f"{ours}.weight", "conv1x1_dense",
                      (1, 1, lin.in_features, lin.out_features)),
                Entry(f"{e}/output_convs/{key}/conv/bias", f"{ours}.bias", "copy", (lin.out_features,))]
    return out


def to_ours(kind: str, a: torch.Tensor) -> torch.Tensor:
    if kind == "conv1x1_dense":
        return a[0, 0].T
    if kind == "conv":
        return a.permute(3, 2, 0, 1)
    if kind == "conv_t":  # JAX's transposed conv correlates with the kernel; torch's scatters it
        return a.flip(0, 1).permute(2, 3, 0, 1)
    if kind == "dense":
        return a.T
    if kind == "heads_in":
        return a.reshape(a.shape[0], -1).T
    if kind == "heads_out":
        return a.reshape(a.shape[0], -1)
    return a


def to_official(kind: str, a: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    if kind == "conv1x1_dense":
        return a.T.reshape(shape).contiguous()
    if kind == "conv":
        return a.permute(2, 3, 1, 0).contiguous()
    if kind == "conv_t":
        return a.permute(2, 3, 0, 1).flip(0, 1).contiguous()
    if kind == "dense":
        return a.T.contiguous()
    if kind == "heads_in":
        return a.T.reshape(shape).contiguous()
    return a.reshape(shape).contiguous()


def _split_combined(tensors: dict[str, torch.Tensor]) -> None:
    """Accept fused projections (`query_key_value_projection` [in,3,H,hd], `key_value_projection`
    [in,2,H,hd]), which sequence-layers writes when separate projections are switched off."""
    for key in [k for k in tensors if k.endswith("_projection/kernel")]:
        base, name = key.rsplit("/", 2)[0], key.rsplit("/", 2)[1]
        parts = {"query_key_value_projection": ("query", "key", "value"),
                 "key_value_projection": ("key", "value")}.get(name)
        if parts:
            fused = tensors.pop(key)
            for j, p in enumerate(parts):
                tensors[f"{base}/{p}_projection/kernel"] = fused[:, j]


def _read(path: Path, what: Callable):
    """what(opened safetensors file), with a damaged file reported as a CheckpointError."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            return what(f)
    except FileNotFoundError:
        raise
    except Exception as e:  # safetensors raises its own error types for a damaged header
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e


def read_checkpoint(path: Path, prefix: str = "params/") -> dict[str, torch.Tensor]:
    """All tensors under `prefix` of a safetensors file (flax may store partitioned, "boxed",
    params with a trailing '/value')."""
    return _read(path, lambda f: {k.removesuffix("/value"): f.get_tensor(k)
                                  for k in f.keys() if k.startswith(prefix)})


def read_metadata(path: Path) -> dict[str, str]:
    return _read(path, lambda f: f.metadata() or {})


def detect_config(tensors: dict[str, torch.Tensor], path: Path | str = "checkpoint",
                  metadata: dict[str, str] | None = None) -> MRT2Config:
    """The official size whose shapes the checkpoint has (by temporal width and depth), or the
    shapes a test checkpoint names in its metadata."""
    if metadata and META_MODEL in metadata:
        return config_from_json(metadata[META_MODEL])
    key = f"{DF}/decoder/decoder_embedding/embedding/embedding"
    if key not in tensors:
        raise CheckpointError(f"{path}: no depthformer weights (missing '{key}'); "
                              "is this an MRT2 checkpoint?")
    width = tensors[key].shape[1]
    layers = sum(1 for k in tensors if k.startswith(f"{DF}/decoder/temporal_body/transformer/")
                 and k.endswith("/self_attention/pre_norm/scale"))
    for cfg in SIZES.values():
        if cfg.temporal.d_model == width and cfg.temporal.num_layers == layers:
            return cfg
    raise CheckpointError(f"{path}: temporal decoder is {layers} layers of width {width}; "
                          f"known sizes: " + ", ".join(f"{n} ({c.temporal.num_layers}x{c.temporal.d_model})"
                                                       for n, c in SIZES.items()))


def check(tensors: dict[str, torch.Tensor], layout: list[Entry],
          path: Path | str = "checkpoint") -> list[str]:
    """Problems (missing keys, wrong shapes, non-float dtypes) against `layout`; empty when fine."""
    problems = []
    for e in layout:
        if e.key not in tensors:
            problems.append(f"{path}: missing '{e.key}' (expected shape {list(e.shape)})")
        elif tuple(tensors[e.key].shape) != e.shape:
            got = list(tensors[e.key].shape)
            problems.append(f"{path}: '{e.key}' has shape {got}, expected {list(e.shape)}")
        elif not tensors[e.key].is_floating_point():
            problems.append(f"{path}: '{e.key}' has dtype {tensors[e.key].dtype}, expected a float type")
    return problems


def load_depthformer(path: Path, cfg: MRT2Config | None = None, dtype: torch.dtype = torch.float32,
                     device: str | torch.device = "cpu") -> Depthformer:
    """Build the depthformer for the checkpoint at `path` and load its weights."""
    tensors = read_checkpoint(path, f"{DF}/")
    _split_combined(tensors)
    cfg = cfg or detect_config(tensors, path, read_metadata(path))
    with torch.device("meta"):
        model = Depthformer(cfg)
    _assign(model, depthformer_layout(cfg), tensors, path)
    return model.to(device=device, dtype=dtype).eval()


def _assign(module: torch.nn.Module, layout: list[Entry], tensors: dict[str, torch.Tensor], path) -> None:
    problems = check(tensors, layout, path)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CheckpointError("; ".join(problems[:5]) + more)
    # contiguous copies: the layout changes are views (of the file's memory map), and strided
    # weights make CPU matmuls and convolutions up to 2x slower
    state = {e.param: to_ours(e.kind, tensors[e.key].float()).contiguous() for e in layout}
    module.load_state_dict(state, strict=True, assign=True)
    # the module was built on "meta": its derived buffers are rebuilt for real
    with torch.device("cpu"):
        for m in module.modules():
            if hasattr(m, "build_buffers"):
                m.build_buffers()


def codec_config(path: Path) -> SpectroStreamConfig:
    """The official codec shapes, or those a test checkpoint names in its metadata."""
    meta = read_metadata(path)
    return ss_config_from_json(meta[META_CODEC]) if META_CODEC in meta else SpectroStreamConfig()


def load_spectrostream(path: Path, cfg=None, dtype: torch.dtype = torch.float32,
                       device: str | torch.device = "cpu") -> SpectroStreamDecoder:
    """The SpectroStream decoder (and codebooks) from the checkpoint at `path`; `dtype`: its
    convolutions' (the codebooks and the inverse STFT stay float32)."""
    with torch.device("meta"):
        dec = SpectroStreamDecoder(cfg or codec_config(path))
    _assign(dec, spectrostream_layout(dec), read_checkpoint(path, f"{SS}/"), path)
    return dec.to(device=device).conv_dtype(dtype).eval()


def load_spectrostream_encoder(encoder_path: Path, checkpoint_path: Path, cfg=None,
                               device: str | torch.device = "cpu") -> SpectroStreamEncoder:
    """The encoder from `encoder_path` with the codebooks of `checkpoint_path` (may be one file)."""
    with torch.device("meta"):
        enc = SpectroStreamEncoder(cfg or codec_config(checkpoint_path))
    tensors = {**read_checkpoint(checkpoint_path, f"{SS}/quantizer/"),
               **read_checkpoint(encoder_path, f"{ENCODER}/")}
    _assign(enc, spectrostream_encoder_layout(enc), tensors, encoder_path)
    return enc.to(device=device).eval()


def official_state(model: Depthformer | SpectroStreamDecoder | SpectroStreamEncoder) -> dict[str, np.ndarray]:
    """A model's weights as an official-layout dict (float32 numpy), e.g. to write a test checkpoint."""
    sd = model.state_dict()
    if isinstance(model, SpectroStreamDecoder):
        layout = spectrostream_layout(model)
    elif isinstance(model, SpectroStreamEncoder):
        layout = spectrostream_encoder_layout(model)
    else:
        layout = depthformer_layout(model.cfg)
    return {e.key: to_official(e.kind, sd[e.param].detach().float().cpu(), e.shape).numpy() for e in layout}


def randomise(module: torch.nn.Module, std: float = 0.05, seed: int | None = 0) -> torch.nn.Module:
    """Random weights in place (benchmarks, tests, fixtures): N(0, std), norm scales N(1, 0.1).
    `seed=None` draws from torch's current random state."""
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("scale", "norm.weight")):
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0.0, std)
    return module.eval()


def random_depthformer(cfg: MRT2Config, seed: int = 0, std: float = 0.05) -> Depthformer:
    """A model with random weights and the given shapes."""
    return randomise(Depthformer(cfg), std, seed)


def write_checkpoint(path: Path, model: Depthformer, decoder: SpectroStreamDecoder) -> None:
    """One safetensors file in the official layout; non-official shapes go in its metadata."""
    from safetensors.numpy import save_file

    from .config import SIZES as KNOWN
    from .config import config_to_json
    from .spectrostream import ss_config_to_json
    meta = {}
    if model.cfg not in KNOWN.values():
        meta[META_MODEL] = config_to_json(model.cfg)
    if decoder.cfg != SpectroStreamConfig():
        meta[META_CODEC] = ss_config_to_json(decoder.cfg)
    save_file({**official_state(model), **official_state(decoder)}, str(path), metadata=meta)
