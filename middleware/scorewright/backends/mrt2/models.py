"""Where the MRT2 files live, what each size needs, and download/verify.

Layout (the official one, so files fetched by Magenta's own tools are found as they are):

    <root>/checkpoints/mrt2_small.safetensors | mrt2_base.safetensors
    <root>/resources/musiccoca/{spm.model, text_encoder.tflite, audio_preprocessor.tflite,
                                music_encoder.tflite, pretrained_vector_quantizer.tflite,
                                mapper.tflite (optional: refines text prompts)}
    <root>/resources/spectrostream/encoder.safetensors   (optional: silence prefill)

<root> is $SCOREWRIGHT_MODELS, else a bundle's models/ folder (`scorewright bundle --mrt2`),
else $MAGENTA_HOME/magenta-rt-v2 (MAGENTA_HOME defaults to
~/Documents/Magenta). Files come from the Hugging Face repo google/magenta-realtime-2; `download`
fetches what the official `mrt models init` does (every file under resources/musiccoca and
resources/spectrostream) and the size's checkpoint (`mrt checkpoints download`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HF_REPO = "google/magenta-realtime-2"
SIZES = ("small", "base")
MUSICCOCA_FILES = ("spm.model", "text_encoder.tflite", "audio_preprocessor.tflite", "music_encoder.tflite",
                   "pretrained_vector_quantizer.tflite")
MAPPER = "mapper.tflite"
RESOURCE_FOLDERS = ("resources/musiccoca", "resources/spectrostream")   # official `models init`


class ModelsMissing(FileNotFoundError):
    """Model files are not where they should be; the message says what to run."""


def root() -> Path:
    if os.environ.get("SCOREWRIGHT_MODELS"):
        return Path(os.environ["SCOREWRIGHT_MODELS"]).expanduser()
    from ...frozen import bundle_path
    shipped = bundle_path("models")        # a `scorewright bundle --mrt2` that ships its weights
    if shipped is not None:
        return shipped
    home = Path(os.environ.get("MAGENTA_HOME", Path.home() / "Documents" / "Magenta")).expanduser()
    return home / "magenta-rt-v2"


def checkpoint_path(size: str, base: Path | None = None) -> Path:
    return (base or root()) / "checkpoints" / f"mrt2_{size}.safetensors"


def musiccoca_dir(base: Path | None = None) -> Path:
    return (base or root()) / "resources" / "musiccoca"


def encoder_path(base: Path | None = None) -> Path:
    """The SpectroStream encoder (optional: it gives the tokens of silence to start streams from)."""
    return (base or root()) / "resources" / "spectrostream" / "encoder.safetensors"


@dataclass
class FileStatus:
    path: Path
    present: bool
    bytes: int
    problem: str = ""
    optional: str = ""       # for an optional file: what it adds


def required_files(size: str, base: Path | None = None) -> list[Path]:
    return [checkpoint_path(size, base)] + [musiccoca_dir(base) / f for f in MUSICCOCA_FILES]


def optional_files(base: Path | None = None) -> list[tuple[Path, str]]:
    """(path, what it adds) of the files the backend uses when they are there."""
    return [(musiccoca_dir(base) / MAPPER, "text prompts through the mapper"),
            (encoder_path(base), "silence prefill")]


def status(size: str, base: Path | None = None) -> list[FileStatus]:
    """Every file the size uses, required ones first, then the optional ones."""
    paths = [(p, "") for p in required_files(size, base)] + optional_files(base)
    return [FileStatus(p, p.is_file(), p.stat().st_size if p.is_file() else 0, optional=opt)
            for p, opt in paths]


def require(size: str, base: Path | None = None) -> None:
    """Raise ModelsMissing naming every absent file and the command that fetches them."""
    missing = [s.path for s in status(size, base) if not s.present and not s.optional]
    if missing:
        listed = "\n  ".join(str(p) for p in missing)
        raise ModelsMissing(f"MRT2 '{size}' files missing:\n  {listed}\n"
                            f"Run `scorewright models download {size}` (needs internet), or point "
                            f"SCOREWRIGHT_MODELS at a folder with the official layout.")


def verify(size: str, base: Path | None = None) -> list[FileStatus]:
    """Status of every file, with the checkpoint's keys, shapes and dtypes checked."""
    from . import weights
    from .spectrostream import SpectroStreamDecoder

    rows = status(size, base)
    ckpt = rows[0]
    if ckpt.present:
        try:
            tensors = weights.read_checkpoint(ckpt.path)
            cfg = weights.detect_config(tensors, ckpt.path, weights.read_metadata(ckpt.path))
            import torch
            with torch.device("meta"):
                dec = SpectroStreamDecoder(weights.codec_config(ckpt.path))
            problems = (weights.check(tensors, weights.depthformer_layout(cfg), ckpt.path)
                        + weights.check(tensors, weights.spectrostream_layout(dec), ckpt.path))
            if cfg.name != f"mrt2_{size}":
                problems.insert(0, f"{ckpt.path}: holds the {cfg.name} model, not mrt2_{size}")
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            ckpt.problem = "; ".join(problems[:3]) + more
        except (weights.CheckpointError, OSError) as e:
            ckpt.problem = str(e)
    for r in rows:
        if r.present and r.bytes == 0:
            r.problem = f"{r.path}: empty file"
        elif r.present and r.path.name == MAPPER:
            r.problem = _mapper_problem(r.path)
    return rows


def _mapper_problem(path: Path) -> str:
    """Why mapper.tflite cannot be used ('' if it can)."""
    from .musiccoca import open_mapper
    try:
        open_mapper(path)
    except (RuntimeError, ValueError, OSError) as e:
        return str(e)
    return ""


def download(size: str, base: Path | None = None, progress=print) -> list[Path]:
    """Fetch what the official tools fetch: every file under the resource folders (listed on the
    hub, so mapper.tflite and any later file come too), then the size's checkpoint. Needs internet."""
    try:
        from huggingface_hub import HfApi, hf_hub_download
    except ImportError as e:
        raise RuntimeError("`scorewright models download` needs huggingface_hub: "
                           "pip install 'scorewright[mrt2]'") from e
    dest = base or root()
    listed = HfApi().list_repo_files(HF_REPO)
    names = [n for n in listed if any(n.startswith(f + "/") for f in RESOURCE_FOLDERS)]
    names.append(checkpoint_path(size, dest).relative_to(dest).as_posix())
    got = []
    for i, name in enumerate(names, 1):
        progress(f"[{i}/{len(names)}] {HF_REPO}/{name} -> {dest / name}")
        got.append(Path(hf_hub_download(repo_id=HF_REPO, filename=name, local_dir=dest)))
    missing = [s.path for s in status(size, dest) if not s.present and not s.optional]
    if missing:
        raise ModelsMissing(f"{HF_REPO} did not have: {', '.join(str(p.relative_to(dest)) for p in missing)}")
    return got
