"""SpectroStream decoder (48 kHz stereo): RVQ codes -> embedding -> 2-D conv stack over (time, freq)
-> complex STFT frames -> causal inverse STFT. Facts from magenta-realtime's
mlx/spectrostream/modeling.py and the sequence-layers conv/STFT layers it builds on.

Streaming is exact: every time-kernel conv keeps its last k-1 input frames, every strided transposed
conv keeps its overlap-add tail, the inverse STFT keeps its half-frame tail, so decoding one codec
frame at a time equals decoding the whole sequence. The decoder's one-frame lookahead means the
audio of frame t comes out with frame t+1: the first 40 ms out are silence.

Tensors are [batch, channels, time, freq] inside.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cuda_graph import capture


@dataclass(frozen=True)
class SpectroStreamConfig:
    ratios: tuple[tuple[int, int], ...] = ((1, 2), (1, 2), (1, 3), (1, 2), (1, 2), (2, 2), (2, 1))
    mults: tuple[int, ...] = (2, 1, 2, 1, 1, 2, 1)
    base_depth: int = 64          # decoder_base_conv_depth
    base_kernel: int = 7
    num_bins: int = 480           # STFT bins without Nyquist (DC kept)
    out_channels: int = 4         # re/im x stereo
    channel_splits: int = 2       # the last blocks run per stereo channel with shared weights
    embedding_dim: int = 256
    codebook: int = 1024
    num_quantizers: int = 64
    frame_length: int = 960
    frame_step: int = 480
    lookahead_frames: int = 1     # codec frames
    encoder_base_depth: int = 32

    @property
    def time_stride(self) -> int:
        return math.prod(r[0] for r in self.ratios)

    @property
    def samples_per_frame(self) -> int:
        return self.time_stride * self.frame_step


def ss_config_to_json(cfg: SpectroStreamConfig) -> str:
    return json.dumps(asdict(cfg))


def ss_config_from_json(text: str) -> SpectroStreamConfig:
    d = json.loads(text)
    d["ratios"] = tuple(tuple(r) for r in d["ratios"])
    d["mults"] = tuple(d["mults"])
    return SpectroStreamConfig(**d)


TINY_SS = SpectroStreamConfig(ratios=((1, 2), (2, 2), (2, 1)), mults=(2, 1, 2), base_depth=4, num_bins=8,
                              embedding_dim=16, codebook=32, num_quantizers=12, frame_length=16, frame_step=8,
                              encoder_base_depth=2)


def resample_kernel(stride: tuple[int, int]) -> tuple[int, int]:
    """Kernel of a block's strided (or transposed) conv: twice the stride, at least 3."""
    return max(3, 2 * stride[0]), max(3, 2 * stride[1])


def _state(cache: dict, key: str, like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A layer's streaming state: made (zeros) on first use, then updated in place, so a captured
    CUDA graph keeps pointing at it."""
    if key not in cache:
        cache[key] = like.new_zeros(shape)
    return cache[key]


class CausalConv(nn.Module):
    """Conv2d, causal in time (keeps k_t - 1 past input frames), centred 'same' padding in freq."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int]):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel)
        self.kt, kf = kernel
        self.fpad = ((kf - 1) // 2, kf - 1 - (kf - 1) // 2)

    def forward(self, x: torch.Tensor, cache: dict, key: str) -> torch.Tensor:
        if self.kt > 1:
            past = _state(cache, key, x, (x.shape[0], x.shape[1], self.kt - 1, x.shape[3]))
            x = torch.cat([past, x], dim=2)
            past.copy_(x[:, :, -(self.kt - 1):])
        return self.conv(F.pad(x, self.fpad))


class CausalConvTranspose(nn.Module):
    """Transposed Conv2d, strided in time and freq; causal overlap-add in time, 'same' trim in freq."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int], stride: tuple[int, int]):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, kernel, stride, bias=False)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.st = stride[0]
        self.tail = kernel[0] - stride[0]
        trim = kernel[1] - stride[1]
        self.ftrim = (trim // 2, trim - trim // 2)

    def forward(self, x: torch.Tensor, cache: dict, key: str) -> torch.Tensor:
        y = self.conv(x)
        y = y[..., self.ftrim[0]: y.shape[-1] - self.ftrim[1]]
        n = x.shape[2] * self.st
        if self.tail > 0:
            past = _state(cache, key, y, (y.shape[0], y.shape[1], self.tail, y.shape[3]))
            y = torch.cat([y[:, :, : self.tail] + past, y[:, :, self.tail:]], dim=2)
            past.copy_(y[:, :, n: n + self.tail])
        return y[:, :, :n] + self.bias[:, None, None]


class ResBlock(nn.Module):
    """Pre-activated (ELU) residual unit: [transposed conv or 3x3 conv] -> 3x3 conv, plus a shortcut
    of [1x1 conv when channels change] -> [nearest upsampling when strided]."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int], conv_in: int | None = None):
        super().__init__()
        conv_in = conv_in or c_in
        self.stride = stride
        if stride == (1, 1):
            self.first = CausalConv(conv_in, c_out, (3, 3))
        else:
            self.first = CausalConvTranspose(conv_in, c_out, resample_kernel(stride), stride)
        self.second = CausalConv(c_out, c_out, (3, 3))
        self.shortcut = CausalConv(conv_in, c_out, (1, 1)) if c_in != c_out else None

    def forward(self, x: torch.Tensor, cache: dict, key: str) -> torch.Tensor:
        y = self.first(F.elu(x), cache, key + ".first")
        y = self.second(F.elu(y), cache, key + ".second")
        s = self.shortcut(x, cache, key + ".shortcut") if self.shortcut is not None else x
        if self.stride != (1, 1):
            s = s.repeat_interleave(self.stride[0], dim=2).repeat_interleave(self.stride[1], dim=3)
        return y + s


class SpectroStreamDecoder(nn.Module):
    """Codes [B, T, levels] -> stereo audio [B, T * samples_per_frame, 2]."""

    def __init__(self, cfg: SpectroStreamConfig = SpectroStreamConfig()):
        super().__init__()
        self.cfg = c = cfg
        self.codebooks = nn.Parameter(torch.zeros(c.num_quantizers, c.codebook, c.embedding_dim))
        width = c.base_depth * math.prod(c.mults)
        self.in_bins = c.num_bins // math.prod(r[1] for r in c.ratios)
        proj = self.in_bins * width
        self.first = CausalConv(c.embedding_dim, proj, (1, 1))
        self.b1 = CausalConv(c.embedding_dim, proj, (1, 1))
        self.b2 = CausalConv(proj, proj, (1, 1))
        self.width = width
        self.input_unit = ResBlock(width, width, (1, 1))
        # Block 0 runs on both stereo channels together and doubles the width; the rest run per
        # channel (split into the batch) with shared weights, as sequence-layers' ParallelChannels.
        blocks, c_in = [], width
        for i, (stride, mult) in enumerate(zip(c.ratios[::-1], c.mults[::-1], strict=True)):
            c_out = round((width if i == 0 else c_in) / mult)
            if i == 0:
                c_out *= c.channel_splits
                blocks.append(ResBlock(c_in, c_out, stride))
                c_in = c_out // c.channel_splits
                nominal_in = c_out
            else:
                blocks.append(ResBlock(nominal_in, c_out, stride, conv_in=c_in))
                c_in = nominal_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.out_conv = CausalConv(c_in, c.out_channels // c.channel_splits, (c.base_kernel, c.base_kernel))
        self.build_buffers()
        self.cache: dict[str, torch.Tensor] = {}
        self.frames_seen, self.compute_dtype = 0, torch.float32     # the convolutions' (conv_dtype)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_io: tuple[torch.Tensor, torch.Tensor] | None = None

    def build_buffers(self) -> None:
        """The inverse STFT's synthesis window: periodic Hann divided by the summed squared windows
        of its overlaps (Griffin-Lim eq. 7). Derived from cfg; the loader rebuilds it."""
        c = self.cfg
        window = torch.hann_window(c.frame_length, periodic=True, dtype=torch.float64)
        overlaps = -(-c.frame_length // c.frame_step)
        denom = F.pad(window**2, (0, overlaps * c.frame_step - c.frame_length)).view(overlaps, -1).sum(0)
        denom = denom.repeat(overlaps)[: c.frame_length]
        self.register_buffer("window", torch.where(denom == 0, 0, window / denom).float(), persistent=False)

    def conv_dtype(self, dtype: torch.dtype) -> SpectroStreamDecoder:
        """Run the convolutions in `dtype` (bf16 on CPUs with native bf16); the codebooks, their
        sum and the inverse STFT stay float32. Clears the streaming state."""
        for m in self.modules():
            if isinstance(m, (CausalConv, CausalConvTranspose)):
                m.to(dtype)
        self.compute_dtype = dtype
        self.cache.clear()
        self.frames_seen = 0
        return self

    @torch.inference_mode()
    def reset(self) -> None:
        for v in self.cache.values():
            v.zero_()
        self.frames_seen = 0

    def save(self) -> dict:
        """A copy of the streaming state."""
        return {"cache": {k: v.clone() for k, v in self.cache.items()}, "frames_seen": self.frames_seen}

    @torch.inference_mode()
    def restore(self, snap: dict) -> None:
        """Back to a saved state (tensors copied in place: captured graphs stay valid)."""
        for k, v in snap["cache"].items():
            if k in self.cache:
                self.cache[k].copy_(v)
            else:
                self.cache[k] = v.clone()
        self.frames_seen = snap["frames_seen"]

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """Sum of the first `levels` codebooks' vectors, in float32: [B, T, L] -> [B, T, D]."""
        levels = torch.arange(codes.shape[-1], device=codes.device)
        return self.codebooks[levels, codes].float().sum(-2)

    def spectra(self, emb: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, 4, T * time_stride, bins] (streaming, state in self.cache), in the
        convolutions' dtype."""
        b, t, _ = emb.shape
        x = emb.to(self.compute_dtype).transpose(1, 2)[..., None]   # [B, D, T, 1]
        branch = self.b2(F.elu(self.b1(x, self.cache, "b1")), self.cache, "b2")
        x = self.first(x, self.cache, "first") + branch
        x = x.view(b, self.in_bins, self.width, t).permute(0, 2, 3, 1)   # [B, width, T, in_bins]
        x = self.input_unit(x, self.cache, "input_unit")
        x = self.blocks[0](x, self.cache, "block0")
        x = torch.cat(x.chunk(self.cfg.channel_splits, dim=1), dim=0)    # stereo channels -> batch
        for i, blk in enumerate(self.blocks[1:], 1):
            x = blk(x, self.cache, f"block{i}")
        x = self.out_conv(F.elu(x), self.cache, "out_conv")
        return torch.cat(x.chunk(self.cfg.channel_splits, dim=0), dim=1)

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """[B, 4, S, bins] (re/im per stereo channel) -> [B, S * frame_step, 2], causal overlap-add."""
        c = self.cfg
        z = torch.complex(spec[:, 0::2].float(), spec[:, 1::2].float())   # [B, 2, S, bins]
        z = F.pad(z, (0, c.frame_length // 2 + 1 - c.num_bins))            # add the Nyquist bin
        frames = torch.fft.irfft(z, n=c.frame_length, dim=-1) * self.window  # [B, 2, S, frame_length]
        b, ch, s, _ = frames.shape
        hop = c.frame_step
        k = c.frame_length // hop
        out = frames.new_zeros(b, ch, s + k - 1, hop)
        for j in range(k):
            out[:, :, j: j + s] += frames[..., j * hop: (j + 1) * hop]
        tail = _state(self.cache, "istft", out, (b, ch, k - 1, hop))
        out[:, :, : k - 1] += tail
        tail.copy_(out[:, :, s:])
        return out[:, :, :s].flatten(2).transpose(1, 2)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        spec = self.spectra(self.embed(codes))
        drop = max(0, self.cfg.lookahead_frames - self.frames_seen) * self.cfg.time_stride
        if drop:
            spec = spec.clone()
            spec[:, :, :drop] = 0  # the lookahead's first outputs are not valid yet
        return self.istft(spec)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, cuda_graph: bool = True) -> torch.Tensor:
        """Codes [B, T, L] (0..codebook-1, L <= num_quantizers) -> audio [B, T * 1920, 2], streaming.

        On CUDA, single frames after the lookahead replay one captured graph (the conv stack is
        hundreds of small kernels); the state tensors are the same either way.
        """
        steady = self.frames_seen >= self.cfg.lookahead_frames and codes.shape[1] == 1
        if cuda_graph and steady and codes.is_cuda:
            if self._graph is None or self._graph_io[0].shape != codes.shape:
                self._capture(codes)
            self._graph_io[0].copy_(codes)
            self._graph.replay()
            out = self._graph_io[1].clone()
        else:
            out = self._decode(codes)
        self.frames_seen += codes.shape[1]
        return out

    def _capture(self, codes: torch.Tensor) -> None:
        saved = {k: v.clone() for k, v in self.cache.items()}
        static_in = codes.clone()
        graph, static_out = capture(lambda: self._decode(static_in))
        for k, v in saved.items():
            self.cache[k].copy_(v)
        self._graph, self._graph_io = graph, (static_in, static_out)


# -- encoder (whole clips at once: it turns silence or an audio prompt into tokens to prefill with) --


class StridedConv(nn.Module):
    """Conv2d with sequence-layers' 'semicausal' time padding (k - s before, s - 1 after) and
    centred freq padding of k - s."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1)):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)
        (kt, kf), (st, sf) = kernel, stride
        pf = max(kf - sf, 0)
        before = max(kt - st, 0)
        self.pad = (pf // 2, pf - pf // 2, before, kt - 1 - before)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class EncoderBlock(nn.Module):
    """ELU -> 3x3 conv -> ELU -> strided conv, plus [average pooling] -> [1x1 conv] shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int]):
        super().__init__()
        self.stride = stride
        self.first = StridedConv(c_in, c_in, (3, 3))
        self.second = StridedConv(c_in, c_out, resample_kernel(stride), stride)
        self.shortcut = StridedConv(c_in, c_out, (1, 1)) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.second(F.elu(self.first(F.elu(x))))
        s = x
        if self.stride != (1, 1):
            s = F.avg_pool2d(F.pad(s, (0, 0, 0, self.stride[0] - 1)), self.stride, self.stride)
        if self.shortcut is not None:
            s = self.shortcut(s)
        return y + s


class SpectroStreamEncoder(nn.Module):
    """Stereo audio [B, n, 2] at 48 kHz -> RVQ codes [B, n / 1920, levels] (whole clips, not streamed)."""

    def __init__(self, cfg: SpectroStreamConfig = SpectroStreamConfig()):
        super().__init__()
        self.cfg = c = cfg
        splits = c.channel_splits
        recombo = len(c.ratios) - 1  # the last strided block sees both stereo channels
        kernel = (c.base_kernel, c.base_kernel)
        self.base = StridedConv(c.out_channels // splits, c.encoder_base_depth, kernel)
        blocks, c_in = [], c.encoder_base_depth
        for i, (stride, mult) in enumerate(zip(c.ratios, c.mults, strict=True)):
            c_out = round(c_in * mult)
            blocks.append(EncoderBlock(c_in * splits if i == recombo else c_in, c_out, stride))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.recombo = recombo
        self.bottleneck = EncoderBlock(c_in, c_in, (1, 1))
        bins = c.num_bins // math.prod(r[1] for r in c.ratios)
        flat = bins * c_in
        self.last = nn.Linear(flat, c.embedding_dim)
        self.b1 = nn.Linear(flat, flat)
        self.b2 = nn.Linear(flat, c.embedding_dim)
        self.codebooks = nn.Parameter(torch.zeros(c.num_quantizers, c.codebook, c.embedding_dim))

    def stft(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, n, 2] -> [B, 4, frames, bins]: periodic Hann frames every hop, the last ones zero-padded
        ('reverse causal'), re/im per stereo channel, Nyquist bin dropped."""
        c = self.cfg
        x = F.pad(audio.transpose(1, 2).float(), (0, c.frame_length - 1))
        frames = x.unfold(-1, c.frame_length, c.frame_step)           # [B, 2, F, frame_length]
        n_frames = -(-audio.shape[1] // c.frame_step)
        frames = frames[:, :, :n_frames] * torch.hann_window(c.frame_length, periodic=True, device=x.device)
        spec = torch.fft.rfft(frames, n=c.frame_length, dim=-1)[..., : c.num_bins]
        return torch.stack([spec.real, spec.imag], dim=2).flatten(1, 2)  # re_L, im_L, re_R, im_R

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, n, 2] -> embeddings [B, T, D]."""
        x = self.stft(audio)
        x = torch.cat(x.chunk(self.cfg.channel_splits, dim=1), dim=0)  # stereo channels -> batch
        x = self.base(x)
        for i, blk in enumerate(self.blocks):
            if i == self.recombo:
                x = torch.cat(x.chunk(self.cfg.channel_splits, dim=0), dim=1)
            x = blk(x)
        x = self.bottleneck(x)                                          # [B, C, T, bins]
        x = x.permute(0, 2, 3, 1).flatten(2)                            # [B, T, bins * C]
        return self.last(x) + self.b2(F.elu(self.b1(F.elu(x))))

    @torch.inference_mode()
    def encode(self, audio: torch.Tensor, levels: int = 12) -> torch.Tensor:
        """[B, n, 2] float audio -> codes [B, T, levels] by residual nearest-neighbour search."""
        residual = self.embed(audio)
        codes = []
        for book in self.codebooks[:levels]:
            idx = torch.cdist(residual, book[None].expand(residual.shape[0], -1, -1)).argmin(-1)
            residual = residual - book[idx]
            codes.append(idx)
        return torch.stack(codes, dim=-1)
