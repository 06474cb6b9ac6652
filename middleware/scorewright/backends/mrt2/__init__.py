"""Magenta RealTime 2 in PyTorch: depthformer, SpectroStream codec, MusicCoCa style model."""

from __future__ import annotations

import os


def create(seed: int = 0):
    """The registry's factory: MRT2 of size $SCOREWRIGHT_MRT2_SIZE (small|base, default small)
    from the models folder; $SCOREWRIGHT_MRT2_COMPILE=1 turns on torch.compile (opt-in);
    $SCOREWRIGHT_MRT2_ONSETS=mask|unmask (default mask) picks how notes go in;
    $SCOREWRIGHT_MRT2_PREFILL=silence starts streams after the official silence prefill;
    $SCOREWRIGHT_MRT2_DTYPE=fp32|bf16|fp16 overrides the precision (default: bf16 where native);
    $SCOREWRIGHT_MRT2_QUANT=int8|int4 makes the temporal and depth linears weight-only int8 or
    4-bit (opt-in; int4 on the CPU only);
    $SCOREWRIGHT_MRT2_PACK=0 turns off the prepacked CPU linears and convolutions."""
    from ..base import BackendNotInstalled, BackendUnavailable
    try:
        import torch  # noqa: F401
    except ImportError as e:
        from ...frozen import bundle_dir
        if bundle_dir() is not None:
            raise BackendNotInstalled("this server was bundled without the mrt2 backend: build it with "
                                      "`scorewright bundle --mrt2`") from e
        raise BackendNotInstalled("the mrt2 backend needs PyTorch: pip install 'scorewright[mrt2]'") from e
    from . import models
    from .backend import MRT2Backend
    from .devices import DTYPES
    from .linears import QUANT_MODES
    from .start import PREFILL_FRAMES
    from .tokens import ONSET_MODES
    from .weights import CheckpointError
    size = os.environ.get("SCOREWRIGHT_MRT2_SIZE", "small")
    onsets = os.environ.get("SCOREWRIGHT_MRT2_ONSETS", "mask")
    prefill = os.environ.get("SCOREWRIGHT_MRT2_PREFILL", "off")
    dtype = os.environ.get("SCOREWRIGHT_MRT2_DTYPE", "auto")
    quant = os.environ.get("SCOREWRIGHT_MRT2_QUANT", "off")
    pack = os.environ.get("SCOREWRIGHT_MRT2_PACK", "1")
    for var, value, allowed in (("SIZE", size, models.SIZES), ("ONSETS", onsets, ONSET_MODES),
                                ("PREFILL", prefill, ("off", "silence")),
                                ("DTYPE", dtype, ("auto", *DTYPES)), ("QUANT", quant, QUANT_MODES),
                                ("PACK", pack, ("0", "1"))):
        if value not in allowed:
            raise BackendUnavailable(f"SCOREWRIGHT_MRT2_{var}={value!r}; "
                                     f"expected one of {', '.join(allowed)}")
    try:
        return MRT2Backend(size=size, seed=seed, compile=os.environ.get("SCOREWRIGHT_MRT2_COMPILE") == "1",
                           onsets=onsets, prefill_frames=PREFILL_FRAMES if prefill == "silence" else 0,
                           dtype=None if dtype == "auto" else dtype, quant=quant, pack=pack == "1")
    except (models.ModelsMissing, CheckpointError) as e:
        raise BackendUnavailable(str(e)) from e
    except ValueError as e:                  # an option this machine cannot run (int4 off the CPU)
        raise BackendUnavailable(f"{e} (SCOREWRIGHT_MRT2_* settings)") from e
