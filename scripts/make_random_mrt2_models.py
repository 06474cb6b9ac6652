"""A models folder in the official layout with RANDOM weights at the real shapes, for timing the
whole mrt2 pipeline (engine, model, codec) without downloading anything. It makes noise, not music.

    python scripts/make_random_mrt2_models.py DIR [--size small|base]
    SCOREWRIGHT_MODELS=DIR scorewright render demo --backend mrt2 --seconds 30 --out x.wav

MusicCoCa files are the tiny stand-ins from tests/fixtures/musiccoca_tiny (same interfaces).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from safetensors.numpy import save_file

from scorewright.backends.mrt2 import models
from scorewright.backends.mrt2.config import SIZES
from scorewright.backends.mrt2.spectrostream import SpectroStreamDecoder, SpectroStreamEncoder
from scorewright.backends.mrt2.weights import official_state, random_depthformer, randomise, write_checkpoint

STANDINS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "musiccoca_tiny"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--size", default="small", choices=sorted(SIZES))
    a = ap.parse_args()
    ckpt = models.checkpoint_path(a.size, a.dir)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    write_checkpoint(ckpt, random_depthformer(SIZES[a.size]), randomise(SpectroStreamDecoder(), std=0.02))
    models.encoder_path(a.dir).parent.mkdir(parents=True, exist_ok=True)
    save_file(official_state(randomise(SpectroStreamEncoder(), std=0.02)), str(models.encoder_path(a.dir)))
    shutil.copytree(STANDINS, models.musiccoca_dir(a.dir), dirs_exist_ok=True)
    print(f"wrote {a.dir} ({ckpt.stat().st_size / 1e9:.2f} GB checkpoint)")


if __name__ == "__main__":
    main()
