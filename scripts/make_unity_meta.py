"""Write the .meta files Unity needs for game_bindings/unity (a package installed from git is
read-only, so Unity cannot create them itself). GUIDs derive from the path, so rerunning this
after adding a file changes nothing else.

    python scripts/make_unity_meta.py
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "game_bindings" / "unity"
ASSET_TAIL = "  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
IMPORTERS = {
    ".cs": "MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n"
           "  executionOrder: 0\n  icon: {instanceID: 0}\n  userData: \n  assetBundleName: \n"
           "  assetBundleVariant: \n",
    ".asmdef": "AssemblyDefinitionImporter:\n" + ASSET_TAIL,
    ".md": "TextScriptImporter:\n" + ASSET_TAIL,
    ".json": "PackageManifestImporter:\n  externalObjects: {}\n  userData: \n  assetBundleName: \n"
             "  assetBundleVariant: \n",
}


def assets(root: Path = PACKAGE) -> list[Path]:
    """Files and folders Unity imports: everything but .meta files and `name~` folders."""
    def hidden(p: Path) -> bool:
        return any(part.endswith("~") for part in p.relative_to(root).parts)
    return sorted(p for p in root.rglob("*") if p.suffix != ".meta" and not hidden(p))


def meta_text(path: Path) -> str:
    guid = hashlib.md5(("scorewright/" + path.relative_to(PACKAGE).as_posix()).encode()).hexdigest()
    head = f"fileFormatVersion: 2\nguid: {guid}\n"
    if path.is_dir():
        return head + "folderAsset: yes\nDefaultImporter:\n" + ASSET_TAIL
    return head + IMPORTERS.get(path.suffix, "DefaultImporter:\n" + ASSET_TAIL)


def main() -> None:
    written = 0
    for path in assets():
        meta = path.with_name(path.name + ".meta")
        if not meta.exists():
            meta.write_text(meta_text(path))
            written += 1
    print(f"{written} .meta files written under {PACKAGE}")


if __name__ == "__main__":
    main()
