"""The bundle's licenses/ folder: the notices of everything it carries, collected from what
PyInstaller put in (its manifest), so a library added later brings its licence by itself.

    licenses/README.txt            what is in the bundle, under which licence, what to credit
    licenses/scorewright/          Scorewright (Apache-2.0)
    licenses/TimGM6mb/             the default SoundFont (GPL-2.0)
    licenses/all-MiniLM-L6-v2/     the style embedder's weights (Apache-2.0) and model card
    licenses/python/               the Python runtime (PSF)
    licenses/pyinstaller/          the bootloader in the executable (GPL-2.0 with exception)
    licenses/packages/NAME/        each bundled Python distribution's own licence files
    licenses/system/PKG.txt        Debian packages of bundled system libraries (Linux, dpkg)
"""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

NOTICES = Path(__file__).resolve().parent / "notices"
LICENSE_WORDS = ("LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS")


@dataclass
class Component:
    name: str
    version: str
    licence: str
    folder: str            # under licenses/


def _licence_of(dist: md.Distribution) -> str:
    meta = dist.metadata
    expr = meta.get("License-Expression")
    if expr:
        return expr
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or []
                   if c.startswith("License ::")]
    if classifiers:
        return ", ".join(classifiers)
    text = (meta.get("License") or "").strip()
    return text.splitlines()[0][:80] if text else "see its files"


def _licence_files(dist: md.Distribution) -> list[Path]:
    out = []
    for f in dist.files or []:
        name = f.name.upper()
        in_meta = any(part.endswith((".dist-info", ".egg-info")) for part in f.parts)
        if (in_meta or len(f.parts) == 1) and any(w in name for w in LICENSE_WORDS):
            path = Path(str(f.locate()))
            if path.is_file():
                out.append(path)
    return out


def python_packages(modules: list[str], dest: Path) -> list[Component]:
    """Each distribution that provides a bundled top-level module: its licence files."""
    owners = md.packages_distributions()
    names = sorted({d for m in modules for d in owners.get(m, [])} - {"scorewright"})
    found = []
    for name in names:
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        folder = dest / "packages" / dist.metadata["Name"]
        folder.mkdir(parents=True, exist_ok=True)
        files = _licence_files(dist)
        for f in files:
            shutil.copy2(f, folder / f.name)
        if not files:
            (folder / "METADATA.txt").write_text(str(dist.metadata))
        found.append(Component(dist.metadata["Name"], dist.version, _licence_of(dist),
                               f"packages/{dist.metadata['Name']}"))
    return found


def python_runtime(dest: Path) -> Component:
    """The interpreter's own LICENSE.txt (python.org and Debian installs ship one)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt",
                  Path(sys.base_prefix) / "LICENSE.txt",
                  Path(sys.base_prefix) / "lib" / f"python{version}" / "LICENSE.txt"]
    folder = dest / "python"
    folder.mkdir(parents=True, exist_ok=True)
    for c in candidates:
        if c.is_file():
            shutil.copy2(c, folder / "LICENSE.txt")
            break
    else:
        (folder / "LICENSE.txt").write_text(
            "Python Software Foundation License Version 2: https://docs.python.org/3/license.html\n")
    return Component("Python", sys.version.split()[0], "PSF-2.0", "python")


def system_libraries(binaries: list[str], dest: Path) -> list[Component]:
    """Libraries PyInstaller took from the system (not from a wheel): on Debian-like systems,
    their package's copyright file. Elsewhere nothing (listed as unverified in README.txt)."""
    python = [Path(p).resolve() for p in (sys.base_prefix, sys.prefix, *sysconfig.get_paths().values())]
    system = [b for b in binaries if not any(Path(b).resolve().is_relative_to(s) for s in python)]
    if not system or shutil.which("dpkg") is None:
        return []
    names = set()
    for b in system:      # dpkg knows each file by one of these names (merged /usr)
        names |= {b, str(Path(b).resolve()), "/usr" + b if b.startswith("/lib") else b}
    r = subprocess.run(["dpkg", "-S", *sorted(names)], capture_output=True, text=True)
    packages = sorted({line.split(":")[0] for line in r.stdout.splitlines() if ": /" in line})
    found = []
    for pkg in packages:
        copyright_file = Path("/usr/share/doc") / pkg / "copyright"
        if copyright_file.is_file():
            (dest / "system").mkdir(parents=True, exist_ok=True)
            shutil.copy2(copyright_file, dest / "system" / f"{pkg}.txt")
            found.append(Component(pkg, "", "see its copyright file", f"system/{pkg}.txt"))
    return found


def fixed_notices(dest: Path, soundfont: str | None, model_card: Path | None) -> list[Component]:
    """Scorewright, the SoundFont, the MiniLM weights and PyInstaller's bootloader."""
    apache = NOTICES / "Apache-2.0.txt"
    out = []
    (dest / "scorewright").mkdir(parents=True, exist_ok=True)
    shutil.copy2(apache, dest / "scorewright" / "LICENSE.txt")
    from .. import __version__
    out.append(Component("Scorewright", __version__, "Apache-2.0", "scorewright"))
    if soundfont is None:
        (dest / "TimGM6mb").mkdir(parents=True, exist_ok=True)
        shutil.copy2(NOTICES / "TimGM6mb.txt", dest / "TimGM6mb" / "NOTICE.txt")
        shutil.copy2(NOTICES / "GPL-2.0.txt", dest / "TimGM6mb" / "GPL-2.0.txt")
        out.append(Component("TimGM6mb.sf2 (SoundFont)", "", "GPL-2.0", "TimGM6mb"))
    folder = dest / "all-MiniLM-L6-v2"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(apache, folder / "LICENSE.txt")
    if model_card is not None and model_card.is_file():
        shutil.copy2(model_card, folder / "MODEL_CARD.md")
    out.append(Component("sentence-transformers/all-MiniLM-L6-v2 (weights)", "", "Apache-2.0",
                         "all-MiniLM-L6-v2"))
    try:
        pyi = md.distribution("pyinstaller")
        (dest / "pyinstaller").mkdir(parents=True, exist_ok=True)
        for f in _licence_files(pyi):
            shutil.copy2(f, dest / "pyinstaller" / f.name)
        out.append(Component("PyInstaller bootloader", pyi.version,
                             "GPL-2.0-or-later WITH Bootloader-exception", "pyinstaller"))
    except md.PackageNotFoundError:
        pass
    return out


def write_index(dest: Path, parts: list[Component], soundfont: str | None) -> None:
    lines = ["Licences of what this Scorewright server bundle contains.", "",
             "A game that ships this folder must keep this licenses/ folder with it and credit",
             "(e.g. in its credits or legal screen):",
             "  - Scorewright (Apache-2.0)",
             "  - all-MiniLM-L6-v2 by sentence-transformers / Microsoft (Apache-2.0)",
             "  - Python (PSF License)"]
    if soundfont is None:
        lines += ["  - TimGM6mb SoundFont by Tim Brechbill (GPL-2.0): the GPL applies to that file,",
                  "    which the bundle carries unchanged and separate from the game's code, with",
                  "    its licence (TimGM6mb/). To ship another SoundFont instead, build with",
                  "    `scorewright bundle --soundfont YOUR.sf2`."]
    else:
        lines += [f"  - the SoundFont {soundfont} under its own licence (supplied by the game)"]
    lines += ["", f"{'component':<52} {'version':<14} licence (folder)", "-" * 100]
    for p in parts:
        lines.append(f"{p.name:<52} {p.version:<14} {p.licence} ({p.folder})")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "README.txt").write_text("\n".join(lines) + "\n")


def collect(dest: Path, modules: list[str], binaries: list[str], soundfont: str | None,
            model_card: Path | None) -> list[Component]:
    """Fill `dest` (licenses/) and return what it lists."""
    parts = fixed_notices(dest, soundfont, model_card)
    parts.append(python_runtime(dest))
    parts += python_packages(modules, dest)
    parts += system_libraries(binaries, dest)
    write_index(dest, parts, soundfont)
    return parts
