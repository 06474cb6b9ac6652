"""Run a fixture script inside a side virtual environment that has the official packages (JAX,
TensorFlow) our own environment should not carry: made once next to the repo, reused after."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path


def run_inside(venv: Path, modules: list[str], packages: list[str], script: str) -> None:
    """Return if `modules` import here; else create `venv` with `packages` (once) and re-run
    `script` with this process's arguments inside it, exiting with its status."""
    try:
        for name in modules:
            importlib.import_module(name)
        return
    except ImportError:
        pass
    marker = f"SIDE_VENV_{venv.name.upper().replace('-', '_').replace('.', '')}"
    if os.environ.get(marker):
        sys.exit(f"{', '.join(modules)} still not importable inside {venv}")
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"creating {venv} with {' '.join(packages)} ...", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", *packages])
    sys.exit(subprocess.call([str(py), script, *sys.argv[1:]], env=dict(os.environ, **{marker: "1"})))
