"""Build a self-contained Scorewright server for this platform (PyInstaller, one folder):

    OUT/scorewright-server[.exe]   `scorewright`, frozen: engines run `... serve MAP ...`
    OUT/_internal/                 Python, the libraries, the SoundFont, the embedder
    OUT/maps/                      the game's state maps (--map), found by file name or name
    OUT/soundfont.sf2              the game's SoundFont (--soundfont), instead of TimGM6mb
    OUT/licenses/                  what the bundle contains and under which licence
    OUT/bundle.json, README.txt    what was built, and how engines launch it

Steps: check the inputs (maps load, PyInstaller present) before the long part, halve the
embedder's weights (float16: 44 MB instead of 91 MB), run PyInstaller, lay out the folder, strip
the Python runtime's own libraries (Linux), collect the licences, and run the result once.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import BundleError, licenses
from .maps import copy_maps

SPEC = Path(__file__).resolve().parent / "scorewright.spec"
STEPS = (("Analyzing", "analysing imports"),
         ("Processing module hooks", "running the libraries' hooks"),
         ("Looking for dynamic libraries", "collecting native libraries"),
         ("Building PYZ", "archiving modules"),
         ("Building EXE", "writing the executable"),
         ("Building COLLECT", "collecting the folder"))


@dataclass
class BundleOptions:
    out: Path
    maps: list[Path] = field(default_factory=list)
    mrt2: bool = False
    soundfont: Path | None = None
    full_precision: bool = False        # keep the embedder's float32 weights (+44 MB)
    name: str = "scorewright-server"
    work: Path | None = None            # PyInstaller's work folder (default: a temporary one)
    check: bool = True                  # run the built executable once


@dataclass
class BundleResult:
    folder: Path
    executable: Path
    bytes: int
    files: int
    seconds: float
    maps: list[str]
    licences: int


def executable_name(name: str) -> str:
    return name + (".exe" if sys.platform == "win32" else "")


def preflight(opts: BundleOptions) -> None:
    """Everything that can be wrong with the inputs, before minutes of building."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise BundleError("PyInstaller is not installed: pip install 'scorewright[bundle]'") from None
    if opts.mrt2:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise BundleError("--mrt2 bundles PyTorch, which is not installed here: "
                              "pip install 'scorewright[mrt2]'") from None
    if opts.soundfont is not None and not opts.soundfont.is_file():
        raise BundleError(f"--soundfont {opts.soundfont}: no such file")
    out = opts.out.resolve()
    if out.exists() and any(out.iterdir()) and not (out / "bundle.json").is_file():
        raise BundleError(f"{out} exists and is not a Scorewright bundle; give an empty or new "
                          "folder with --out (a previous bundle there is replaced)")
    for m in opts.maps:
        if not m.exists():
            raise BundleError(f"--map {m}: no such file or folder")


def half_precision_model(dest: Path) -> Path:
    """The MiniLM weights as float16 (the embedder computes in float32 either way; embeddings
    agree to cosine 0.9999995) with its tokenizer, in `dest`."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    from ..backends.synth.embedder import model_dir
    src = model_dir()
    dest.mkdir(parents=True, exist_ok=True)
    weights = {k: v.astype(np.float16) if v.dtype == np.float32 else v
               for k, v in load_file(src / "model.safetensors").items()}
    save_file(weights, dest / "model.safetensors")
    shutil.copy2(src / "tokenizer.json", dest / "tokenizer.json")
    return dest


def run_pyinstaller(opts: BundleOptions, work: Path, model: Path | None,
                    say: Callable[[str], None]) -> Path:
    """PyInstaller on scorewright.spec; progress per phase; its log in work/pyinstaller.log."""
    dist = work / "dist"
    cmd = [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--clean",
           "--distpath", str(dist), "--workpath", str(work / "build"), "--log-level", "INFO", "--",
           "--name", opts.name, "--manifest", str(work / "manifest.json")]
    cmd += ["--mrt2"] if opts.mrt2 else []
    cmd += ["--no-default-soundfont"] if opts.soundfont else []
    cmd += ["--model-dir", str(model)] if model else []
    log_path = work / "pyinstaller.log"
    start, seen = time.monotonic(), set()
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=work, env={**os.environ, "PYTHONNOUSERSITE": "1"})
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            for key, label in STEPS:
                if key in line and key not in seen:
                    seen.add(key)
                    say(f"  {time.monotonic() - start:5.0f} s  {label}")
        proc.wait()
    if proc.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise BundleError(f"PyInstaller failed ({proc.returncode}); its log: {log_path}\n{tail}")
    return dist / opts.name


def strip_runtime(folder: Path) -> None:
    """Strip libpython and the standard library's extension modules (Linux): 30 MB of symbols.
    The wheels' own libraries are left alone: stripping patchelf-ed files breaks them."""
    if not sys.platform.startswith("linux") or shutil.which("strip") is None:
        return
    internal = folder / "_internal"
    targets = [*internal.glob("libpython3*.so*"), *internal.glob("python3*/lib-dynload/*.so")]
    if targets:
        subprocess.run(["strip", "--strip-unneeded", *map(str, targets)], check=True)


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


def write_readme(folder: Path, opts: BundleOptions, maps: list[str]) -> None:
    exe = executable_name(opts.name)
    example = maps[0] if maps else "demo"
    (folder / "README.txt").write_text(
        f"Scorewright server, self-contained ({platform.system()} {platform.machine()}): "
        "no Python needed.\n\n"
        f"Engines launch it (Unity: StreamingAssets/Scorewright/, Godot: a 'scorewright' folder next\n"
        f"to the exported game); by hand:\n\n"
        f"  ./{exe} serve {example} --tcp-port 7702 --ring mygame --parent-pid <game pid>\n\n"
        f"Maps: {', '.join(maps) or '(none; the examples demo, open_world, platformer, horror_stealth)'}"
        " (in maps/; give the file name or the name).\n"
        "Licences and what a game must credit: licenses/README.txt\n")


def build(opts: BundleOptions, say: Callable[[str], None]) -> BundleResult:
    start = time.monotonic()
    preflight(opts)
    say(f"checking {len(opts.maps)} map(s)" if opts.maps else "no --map: the bundle serves the example maps")
    with tempfile.TemporaryDirectory(prefix="scorewright-bundle-") as tmp:
        work = (opts.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        staged_maps = copy_maps(opts.maps, work / "maps")            # MapError before the build
        model = None if opts.full_precision else half_precision_model(work / "model")
        say(f"building with PyInstaller ({'synth + mrt2' if opts.mrt2 else 'synth only'}; "
            f"about a minute)")
        built = run_pyinstaller(opts, work, model, say)
        out = opts.out.resolve()
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(built, out, symlinks=True)
        strip_runtime(out)
        if staged_maps:
            shutil.copytree(work / "maps", out / "maps")
        if opts.soundfont:
            shutil.copy2(opts.soundfont, out / "soundfont.sf2")
        manifest = json.loads((work / "manifest.json").read_text())
    say("collecting licences")
    from ..backends.synth.embedder import model_dir
    parts = licenses.collect(out / "licenses", manifest["modules"], manifest["binaries"],
                             opts.soundfont.name if opts.soundfont else None, model_dir() / "README.md")
    write_readme(out, opts, staged_maps)
    exe = out / executable_name(opts.name)
    size, files = folder_size(out)
    info = {"scorewright": __import__("scorewright").__version__, "platform": sys.platform,
            "machine": platform.machine(), "executable": exe.name, "maps": staged_maps,
            "mrt2": opts.mrt2, "soundfont": opts.soundfont.name if opts.soundfont else "TimGM6mb.sf2",
            "embedder": "float32" if opts.full_precision else "float16", "bytes": size,
            "python": platform.python_version(), "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (out / "bundle.json").write_text(json.dumps(info, indent=2) + "\n")
    if opts.check:
        check(exe, staged_maps, say)
    return BundleResult(out, exe, size, files, time.monotonic() - start, staged_maps, len(parts))


def check(exe: Path, maps: list[str], say: Callable[[str], None]) -> None:
    """Run the built executable on each shipped map (or the demo): it starts and loads them."""
    for m in maps or ["demo"]:
        r = subprocess.run([str(exe), "validate", m], capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")})
        if r.returncode != 0:
            raise BundleError(f"the built server cannot load {m}:\n{r.stdout}{r.stderr}")
        say(f"  {r.stdout.strip()}")


def result_json(r: BundleResult) -> str:
    d = asdict(r)
    d["folder"], d["executable"] = str(r.folder), str(r.executable)
    return json.dumps(d)
