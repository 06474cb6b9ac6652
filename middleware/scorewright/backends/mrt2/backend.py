"""MRT2Backend: Magenta RealTime 2 behind the Backend protocol (one 40 ms frame per step)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ...audio import FRAME_SAMPLES
from ...conditioning import Conditioning
from ..base import Backend
from . import devices, linears, models, musiccoca, packed_convs, profiles, start, tokens
from .musiccoca import MusicCoCa
from .sampler import BRANCHES as sampler_branches
from .sampler import Sampler, SamplingParams
from .weights import load_depthformer, load_spectrostream, load_spectrostream_encoder

log = logging.getLogger(__name__)
# frames the model takes to answer a change of its conditioning (the frame it is given shapes
# that frame's tokens at 40 ms granularity; the figure, not measured on real weights)
REACTION_FRAMES = 1


class StyleModel(Protocol):
    """What the backend needs from MusicCoCa (the TFLite one, or anything with its interface)."""

    def embed_text(self, text: str) -> np.ndarray: ...
    def embed_audio(self, pcm: np.ndarray, sr: int) -> np.ndarray: ...
    def tokenize(self, embedding: np.ndarray) -> np.ndarray: ...


class MRT2Backend(Backend):
    """Magenta RealTime 2: the depthformer samples 12 codec tokens per frame under the
    conditioning, SpectroStream decodes them to 48 kHz stereo."""

    name = "mrt2"
    style_dim = 768
    # the official C++ runtime's own defaults (profiles.ENGINE); maps' `generation:` overrides them
    generation_defaults = profiles.ENGINE

    def __init__(self, size: str = "small", seed: int = 0, device: str | None = None,
                 dtype: str | None = None,
                 models_root: Path | None = None, style_model: StyleModel | None = None,
                 guidance: bool = True, compile: bool = False, onsets: str = "mask",
                 prefill_frames: int = 0, quant: str = "off", pack: bool = True) -> None:
        """`device`: CUDA, else MPS, else CPU unless given; `dtype` ("fp32", "bf16", "fp16"):
        bf16 where native, else fp32 unless given (devices.py); `onsets`: "mask" (official
        default: sounding notes go in as "on, the model decides") or "unmask" (held and onset);
        `prefill_frames`: 0 (official default) starts streams from the start state, N >= 2 from
        N frames of silence (the official opt-in uses start.PREFILL_FRAMES), which needs
        resources/spectrostream/encoder.safetensors; `quant` "int8" / "int4" (CPU): weight-only
        int8 / 4-bit temporal and depth linears (opt-in); `pack`: oneDNN-prepacked linears and codec
        convolutions on CPU (linears.py, packed_convs.py); `compile`: torch.compile the step, per
        layer on the CPU (compiled here, at start; a failure leaves the eager step), whole on CUDA."""
        if onsets not in tokens.ONSET_MODES:
            raise ValueError(f"onsets must be one of {', '.join(tokens.ONSET_MODES)}, got {onsets!r}")
        if prefill_frames == 1 or prefill_frames < 0:
            raise ValueError(f"prefill_frames must be 0 (no prefill) or at least 2, got {prefill_frames}")
        base = models_root or models.root()
        ckpt = models.checkpoint_path(size, base)
        if style_model is None:
            models.require(size, base)
            style_model = MusicCoCa(models.musiccoca_dir(base))
        elif not ckpt.is_file():
            raise models.ModelsMissing(f"MRT2 checkpoint missing: {ckpt}. "
                                       f"Run `scorewright models download {size}`.")
        self.device = devices.pick_device(device)
        linears.check_quant(quant, self.device)      # before the weights load
        dt = devices.model_dtype(self.device, dtype)
        log.info("loading MRT2 %s from %s on %s (%s)", size, ckpt, self.device, dt)
        self.model = load_depthformer(ckpt, dtype=dt, device=self.device)
        g = len(sampler_branches) if guidance else 1
        for done in linears.prepare(self.model, batch=g, quant=quant, pack=pack):
            log.info("mrt2: %s", done)
        codec_dt = devices.codec_dtype(self.device, dt)
        self.decoder = load_spectrostream(ckpt, device=self.device, dtype=codec_dt)
        for done in packed_convs.pack_codec(self.decoder) if pack else ():
            log.info("mrt2: %s", done)
        # a frame's tokens sound after the codec's lookahead, and the model's reaction after that
        self.latency_samples = (self.decoder.cfg.lookahead_frames + REACTION_FRAMES) * FRAME_SAMPLES
        self.guidance, self.onsets, self.prefill_frames = guidance, onsets, prefill_frames
        self.sampler = self._sampler(seed, compile)
        self.style_model = style_model
        self._tokens: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.silence = self._silence_codes(models.encoder_path(base), ckpt) if prefill_frames else None
        self._start = start.StartKey.of(Conditioning(style=np.zeros(0), **self.generation_defaults))
        self._starts: dict[start.StartKey, tuple[dict, dict]] = {}
        if compile:
            self._compile(seed)
        elif self.device.type == "cuda":   # capture the CUDA graphs now, not on the first played frame
            self._warm_up(seed)
        else:
            self.reset(seed)

    def _sampler(self, seed: int, compile: bool) -> Sampler:
        return Sampler(self.model, guidance=self.guidance, seed=seed, cuda_graph=self.device.type == "cuda",
                       compile=compile)

    def _warm_up(self, seed: int) -> None:
        """Two frames from the start state (compiling and capturing what they run), then back."""
        self.reset(seed)
        self.generate(Conditioning(style=np.zeros(self.style_dim, np.float32), **self.generation_defaults), 2)
        self.reset(seed)

    def _compile(self, seed: int) -> None:
        """Compile the step now. A compile that fails (no C++ compiler for inductor, an unsupported
        platform) leaves the eager step, with a warning that says why: compiling only makes frames
        faster. Other failures show in the eager warm-up that follows."""
        log.info("mrt2: compiling the frame step (PyTorch caches the result for later starts)")
        t0 = time.perf_counter()
        try:
            self._warm_up(seed)
        except Exception as e:      # noqa: BLE001 - any compiler failure; the eager step still works
            text = str(e).strip()
            log.warning("mrt2: torch.compile failed, running the eager step instead: %s",
                        text.splitlines()[0] if text else type(e).__name__)
            log.debug("mrt2: the compile failure in full", exc_info=True)
            self.sampler = self._sampler(seed, compile=False)
            self._warm_up(seed)
            return
        log.info("mrt2: compiled in %.1f s", time.perf_counter() - t0)

    # -- style space (MusicCoCa), as the official runtime uses it --

    def embed_text(self, text: str) -> np.ndarray:
        """MusicCoCa's text embedding as it comes (through the mapper where mapper.tflite is
        there, which leaves it unit length); the quantiser reads magnitudes, so no renormalising."""
        return np.asarray(self.style_model.embed_text(text), np.float32)

    def embed_audio(self, pcm: np.ndarray, sr: int) -> np.ndarray:
        """MusicCoCa's audio embedding as it comes (the official code does not normalise it)."""
        return np.asarray(self.style_model.embed_audio(pcm, sr), np.float32)

    def style_vector(self, embedding: np.ndarray) -> np.ndarray:
        """Styles enter blends as they are (official rule: no normalisation)."""
        return np.asarray(embedding, np.float32)

    def blend(self, vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The C++ runtime's blend (musiccoca.blend): weights > 0 normalised to sum 1, a float32
        weighted sum, not renormalised."""
        return musiccoca.blend(vectors, weights)

    def style_tokens(self, style: np.ndarray) -> np.ndarray | None:
        """RVQ tokens of a blended style (cached by its exact value: blends repeat from frame
        to frame)."""
        if not np.any(style):
            return None
        key = np.asarray(style, np.float32).tobytes()
        if key not in self._tokens:
            self._tokens[key] = np.asarray(self.style_model.tokenize(style), np.int64)
            if len(self._tokens) > 512:
                self._tokens.popitem(last=False)
        self._tokens.move_to_end(key)
        return self._tokens[key]

    # -- generation --

    def _silence_codes(self, encoder_file: Path, ckpt: Path) -> torch.Tensor:
        """The codec tokens of silence, for the opt-in silence prefill."""
        if not encoder_file.is_file():
            raise models.ModelsMissing(f"the silence prefill needs {encoder_file}. Run `scorewright models "
                                       "download`, or turn the prefill off.")
        enc = load_spectrostream_encoder(encoder_file, ckpt, device=self.device)
        return start.silent_frame(enc, self.device)

    @torch.inference_mode()
    def prefill_silence(self) -> None:
        """The official silence prefill (see start.py), from a reset state; its result is kept per
        guidance setting, so later resets land there at once."""
        key = self._start
        if key in self._starts:
            model_state, codec_state = self._starts[key]
            self.sampler.restore(model_state, rng=False)
            self.decoder.restore(codec_state)
            return
        n = self.prefill_frames
        ids = torch.from_numpy(start.prefill_ids(key, self.guidance)).to(self.device)
        codes = self.silence.expand(n, -1)
        self.sampler.prefill(ids[:, None].expand(-1, n - 1, -1), codes)
        for chunk in codes[: n - 1].split(50):         # the codec decodes frames 0..n-2
            self.decoder.decode(chunk[None], cuda_graph=False)
        self._starts[key] = (self.sampler.save(), self.decoder.save())

    def reset(self, seed: int | None = None) -> None:
        """A new stream: the start state, or (with prefill) the state after the silence prefill
        under the guidance scales and drums of the last frame generated (the defaults at first)."""
        self.sampler.reset(seed)
        self.decoder.reset()
        if self.prefill_frames:
            self.prefill_silence()

    def generate(self, cond: Conditioning, n_frames: int = 1) -> np.ndarray:
        st = cond.style_tokens if cond.style_tokens is not None else self.style_tokens(cond.style)
        full = tokens.encode(replace(cond, style_tokens=st), onsets=self.onsets)
        ids = tokens.branches(full, self.guidance)
        self._start = start.StartKey.of(cond)
        ids_t = torch.from_numpy(ids).to(self.device)
        params = SamplingParams(temperature=cond.temperature, top_k=cond.top_k,
                                cfg_style=cond.cfg_style, cfg_notes=cond.cfg_notes)
        out = []
        for _ in range(n_frames):
            codes = self.sampler.step(ids_t, params)
            out.append(self.decoder.decode(codes[:, None]))
        return torch.cat(out, dim=1)[0].float().cpu().numpy()
