"""Package the Godot addon as an Asset Library zip: addons/scorewright/ (with its LICENSE), for
Godot's AssetLib tab → Import… or the Asset Library itself.

    python scripts/godot_addon_zip.py [--out dist]    # prints the zip's path
"""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

ADDON = Path(__file__).resolve().parents[1] / "game_bindings" / "godot" / "addons" / "scorewright"


def version() -> str:
    """plugin.cfg's version."""
    found = re.search(r'^version="([^"]+)"', (ADDON / "plugin.cfg").read_text(), re.MULTILINE)
    if not found:
        raise SystemExit(f"no version=\"...\" line in {ADDON / 'plugin.cfg'}")
    return found.group(1)


def build(out_dir: Path) -> Path:
    """Write scorewright-godot-VERSION.zip holding addons/scorewright/ and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"scorewright-godot-{version()}.zip"
    files = sorted(p for p in ADDON.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path in files:
            z.write(path, Path("addons") / "scorewright" / path.relative_to(ADDON))
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("dist"), help="folder for the zip (default: dist)")
    print(build(ap.parse_args().out))


if __name__ == "__main__":
    main()
