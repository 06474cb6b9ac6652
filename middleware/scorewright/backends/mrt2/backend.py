"""MRT2Backend: Magenta RealTime 2 behind the Backend protocol (one 40 ms frame per step)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ...audio import FRAME_SAMPLES
from ...conditioning import Conditioning, unit
from ..base import Backend
from . import models, tokens
from .musiccoca import MusicCoCa
from .sampler import Sampler, SamplingParams
from .weights import CheckpointError, load_depthformer, load_spectrostream, load_spectrostream_encoder

log = logging.getLogger(__name__)
# frames the model takes to answer a change of its conditioning (the frame it is given shapes
# that frame's tokens at 40 ms granularity; the figure, not measured on real weights)
REACTION_FRAMES = 1
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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
    # what the official real-time runner plays with (maps' `generation:` settings override these)
    generation_defaults = {"temperature": 1.3, "top_k": 40,
                           "cfg_style": 3.0, "cfg_notes": 5.0, "cfg_drums": 1.0}

    def __init__(self, size: str = "small", seed: int = 0, device: str | None = None,
                 dtype: str | None = None,
                 models_root: Path | None = None, style_model: StyleModel | None = None,
                 guidance: bool = True, compile: bool = False) -> None:
        base = models_root or models.root()
        ckpt = models.checkpoint_path(size, base)
        if style_model is None:
            models.require(size, base)
            style_model = MusicCoCa(models.musiccoca_dir(base))
        elif not ckpt.is_file():
            raise models.ModelsMissing(f"MRT2 checkpoint missing: {ckpt}. "
                                       f"Run `scorewright models download {size}`.")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dt = DTYPES[dtype or ("bf16" if self.device.type == "cuda" else "fp32")]
        log.info("loading MRT2 %s from %s on %s (%s)", size, ckpt, self.device, dt)
        self.model = load_depthformer(ckpt, dtype=dt, device=self.device)
        self.decoder = load_spectrostream(ckpt, device=self.device)  # the codec stays float32
        # a frame's tokens sound after the codec's lookahead, and the model's reaction after that
        self.latency_samples = (self.decoder.cfg.lookahead_frames + REACTION_FRAMES) * FRAME_SAMPLES
        self.guidance = guidance
        self.sampler = Sampler(self.model, guidance=guidance, seed=seed,
                               cuda_graph=self.device.type == "cuda", compile=compile)
        self.style_model = style_model
        self._tokens: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.silence = self._silence_codes(models.encoder_path(base), ckpt)
        self.reset(seed)
        if self.device.type == "cuda":  # capture the CUDA graphs now, not on the first played frame
            self.generate(Conditioning(style=np.zeros(self.style_dim, np.float32)), 2)
            self.reset(seed)

    # -- style space (MusicCoCa) --

    def embed_text(self, text: str) -> np.ndarray:
        return unit(np.asarray(self.style_model.embed_text(text), np.float32))

    def embed_audio(self, pcm: np.ndarray, sr: int) -> np.ndarray:
        return unit(np.asarray(self.style_model.embed_audio(pcm, sr), np.float32))

    def style_tokens(self, style: np.ndarray) -> np.ndarray | None:
        """RVQ tokens of a blended style (cached: blends repeat from frame to frame)."""
        if not np.any(style):
            return None
        key = np.round(style, 4).astype(np.float32).tobytes()
        if key not in self._tokens:
            self._tokens[key] = np.asarray(self.style_model.tokenize(style), np.int64)
            if len(self._tokens) > 512:
                self._tokens.popitem(last=False)
        self._tokens.move_to_end(key)
        return self._tokens[key]

    # -- generation --

    def _silence_codes(self, encoder_file: Path, ckpt: Path) -> torch.Tensor | None:
        """The codec tokens of silence (the official runner starts streams from them), or None
        without the encoder file."""
        if not encoder_file.is_file():
            log.info("no %s: streams start from the model's start state, not from silence", encoder_file)
            return None
        try:
            enc = load_spectrostream_encoder(encoder_file, ckpt, device=self.device)
        except CheckpointError as e:
            log.warning("SpectroStream encoder unusable (%s); streams start without silence prefill", e)
            return None
        seconds = 4
        codes = enc.encode(torch.zeros(1, seconds * self.sample_rate, 2, device=self.device))
        return codes[0, codes.shape[1] // 2]  # a frame from the middle: no edge effects

    @torch.inference_mode()
    def prefill_silence(self, frames: int | None = None) -> None:
        """Feed `frames` (default: the attention window) frames of silence with every condition
        masked, to the model and the codec, as the official runner does before playing."""
        if self.silence is None:
            return
        n = frames or self.model.cfg.horizon + 1
        ids = tokens.branches(tokens.encode(Conditioning(style=np.zeros(self.style_dim, np.float32))),
                              self.guidance)
        cond = torch.from_numpy(ids).to(self.device)[:, None].expand(-1, n, -1)
        codes = self.silence.expand(n, -1)
        self.sampler.prefill(cond, codes)
        self.decoder.decode(codes[None], cuda_graph=False)  # codec state = after silence; output unused

    def reset(self, seed: int | None = None) -> None:
        self.sampler.reset(seed)
        self.decoder.reset()
        self.prefill_silence()

    def generate(self, cond: Conditioning, n_frames: int = 1) -> np.ndarray:
        st = cond.style_tokens if cond.style_tokens is not None else self.style_tokens(cond.style)
        ids = tokens.branches(tokens.encode(replace(cond, style_tokens=st)), self.guidance)
        ids_t = torch.from_numpy(ids).to(self.device)
        params = SamplingParams(temperature=cond.temperature, top_k=cond.top_k,
                                cfg_style=cond.cfg_style, cfg_notes=cond.cfg_notes)
        out = []
        for _ in range(n_frames):
            codes = self.sampler.step(ids_t, params)
            out.append(self.decoder.decode(codes[:, None]))
        return torch.cat(out, dim=1)[0].float().cpu().numpy()
