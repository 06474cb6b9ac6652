"""SpectroStream decoder: exact streaming, inverse-STFT reconstruction, official weight layout."""

import pytest

torch = pytest.importorskip("torch")

from safetensors.numpy import save_file  # noqa: E402

from scorewright.backends.mrt2 import weights as W  # noqa: E402
from scorewright.backends.mrt2.spectrostream import (  # noqa: E402
    TINY_SS,
    SpectroStreamConfig,
    SpectroStreamDecoder,
)

from .tolerance import codec_depth, rounding_bound  # noqa: E402


def random_decoder(cfg=TINY_SS, seed=0):
    torch.manual_seed(seed)
    return W.randomise(SpectroStreamDecoder(cfg), std=0.2, seed=None)


def test_frame_by_frame_equals_whole_sequence_and_lookahead_is_one_frame():
    dec = random_decoder()
    codes = torch.randint(0, TINY_SS.codebook, (2, 7, 12))
    whole = dec.decode(codes)
    dec.reset()
    parts = torch.cat([dec.decode(codes[:, i: i + 1]) for i in range(7)], dim=1)
    assert whole.shape == (2, 7 * TINY_SS.samples_per_frame, 2)
    # the two differ only in how the convolutions split their sums (tests/tolerance.py)
    tol = rounding_bound(whole.abs().max(), codec_depth(dec))
    assert (whole - parts).abs().max() <= tol
    spf = TINY_SS.samples_per_frame
    assert whole[:, :spf].abs().max() == 0 and whole[:, spf:].abs().max() > 0
    dec.reset()   # the same codes give the same audio after a reset
    assert (dec.decode(codes) - whole).abs().max() <= tol


def test_inverse_stft_reconstructs_a_signal_from_its_hann_frames():
    dec = random_decoder()
    c = TINY_SS
    x = torch.randn(2, 40 * c.frame_step)                    # [stereo, samples]
    hann = torch.hann_window(c.frame_length, periodic=True)
    n = x.shape[1] // c.frame_step - 1
    starts = [m * c.frame_step for m in range(n)]
    frames = torch.stack([x[:, s: s + c.frame_length] * hann for s in starts], 1)
    spec = torch.fft.rfft(frames, dim=-1)[..., : c.num_bins]   # drop Nyquist, as the codec does
    # the expected output: overlap-add of the band-limited frames times the synthesis window
    full = torch.fft.rfft(frames, dim=-1)
    full[..., c.num_bins:] = 0
    limited = torch.fft.irfft(full, n=c.frame_length, dim=-1)
    ri = torch.stack([spec.real, spec.imag], dim=1).reshape(1, 4, n, c.num_bins)  # re_L, im_L, re_R, im_R
    y = dec.istft(ri)[0]                                      # [samples, 2]
    hop = c.frame_step
    expect = torch.zeros(2, (n + 1) * hop)
    for m in range(n):
        expect[:, m * hop: m * hop + c.frame_length] += limited[:, m] * dec.window
    # both sides: a forward FFT and an inverse FFT of one frame, then an overlap-add of two
    assert (y.T - expect[:, : n * hop]).abs().max() <= rounding_bound(x.abs().max(), 2 * c.frame_length + 2)
    # and the synthesis window makes Hann frames sum back to the signal (where nothing was dropped)
    w_sum = hann[:hop] * dec.window[:hop] + hann[hop:] * dec.window[hop:]
    assert (w_sum - 1).abs().max() <= rounding_bound(1.0, c.frame_length)   # the window's own sum


def test_official_layout_round_trip_and_real_shapes(tmp_path):
    dec = random_decoder()
    path = tmp_path / "ss.safetensors"
    save_file(W.official_state(dec), str(path))
    loaded = W.load_spectrostream(path, TINY_SS)
    assert all(p.is_contiguous() for p in loaded.parameters())   # not strided views of the file
    codes = torch.randint(0, TINY_SS.codebook, (1, 4, 12))
    want = dec.decode(codes)   # the same weights, possibly in another memory layout
    assert (loaded.decode(codes) - want).abs().max() <= rounding_bound(want.abs().max(), codec_depth(dec))
    keys = {e.key: e.shape for e in W.spectrostream_layout(SpectroStreamDecoder(SpectroStreamConfig()))}
    assert keys["params/soundstream/quantizer/embedding"] == (64, 1024, 256)
    assert keys["params/soundstream/decoder/input_layer/conv1x1_first/conv/kernel"] == (1, 1, 256, 2560)
    assert keys["params/soundstream/decoder/decoder_0/conv2dtranspose_4x3/conv/kernel"] == (4, 3, 512, 1024)
    assert keys["params/soundstream/decoder/decoder_1/shortcut_layer/conv1x1/conv/kernel"] == (1, 1, 512, 256)
    assert keys["params/soundstream/decoder/output_layer/base_conv_last/conv/kernel"] == (7, 7, 64, 2)
    bad = W.official_state(dec)
    bad.pop("params/soundstream/decoder/decoder_1/conv2d_3x3/conv/bias")
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(W.CheckpointError, match="missing 'params/soundstream/decoder/decoder_1/conv2d_3x3/"):
        W.load_spectrostream(tmp_path / "bad.safetensors", TINY_SS)


def test_transposed_kernel_conversion_matches_a_correlation_definition():
    """JAX-style transposed conv: correlate the stride-dilated input with the kernel (no flip)."""
    k = torch.randn(4, 3, 2, 5)                                 # [kt, kf, in, out] official layout
    x = torch.randn(1, 2, 3, 4)                                 # [B, in, T, F]
    ours = torch.nn.functional.conv_transpose2d(x, W.to_ours("conv_t", k), stride=(2, 1))
    dil = torch.zeros(1, 2, 3 * 2 - 1, 4)
    dil[:, :, ::2] = x
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(dil, (2, 2, 3, 3)), k.permute(3, 2, 0, 1))
    products = torch.nn.functional.conv_transpose2d(x.abs(), W.to_ours("conv_t", k).abs(), stride=(2, 1))
    assert (ours - ref).abs().max() <= rounding_bound(products.max(), k.shape[0] * k.shape[1] * k.shape[2])
    assert torch.equal(W.to_official("conv_t", W.to_ours("conv_t", k), tuple(k.shape)), k)  # pure layout
