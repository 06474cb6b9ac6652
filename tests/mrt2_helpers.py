"""Shared pieces of the mrt2 tests: a tiny models folder in the official layout."""

from pathlib import Path

from scorewright.backends.mrt2 import models
from scorewright.backends.mrt2.config import tiny
from scorewright.backends.mrt2.spectrostream import TINY_SS, SpectroStreamConfig
from scorewright.backends.mrt2.weights import random_depthformer, randomise, write_checkpoint

# TINY_SS's layout, but with 1920-sample frames (240 bins, hop 480) as the engine needs
CODEC = SpectroStreamConfig(ratios=TINY_SS.ratios, mults=TINY_SS.mults, base_depth=2, num_bins=240,
                            embedding_dim=16, codebook=64, num_quantizers=12, frame_length=960,
                            frame_step=480, encoder_base_depth=2)


def write_tiny_checkpoint(root: Path) -> Path:
    """root/checkpoints/mrt2_small.safetensors with a tiny random depthformer and codec."""
    from scorewright.backends.mrt2.spectrostream import SpectroStreamDecoder
    path = models.checkpoint_path("small", root)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = randomise(SpectroStreamDecoder(CODEC), std=0.2)
    write_checkpoint(path, random_depthformer(tiny(codebook=64), std=0.2), codec)
    return path
