"""Take the screenshots in docs/studio.md: the studio on a copy of the demo map, driven in a real
headless Chromium (Debian's `chromium`).

    python scripts/studio_screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.studio_helpers import CHROMIUM_ARGS, Studio, chromium_path, open_page  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "images"))
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo.yaml"
        shutil.copy(ROOT / "middleware" / "scorewright" / "state_maps" / "demo.yaml", demo)
        studio = Studio(demo)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
                page = open_page(browser, studio.url)
                slider = page.locator('input[data-param="danger"]')
                for value, wait in (("0.4", 6000), ("0.45", 3000), ("0.95", 9000)):
                    slider.fill(value)
                    page.wait_for_timeout(wait)
                page.click('button[data-event="player_died"]')
                page.wait_for_timeout(700)
                page.screenshot(path=str(out / "studio.png"))
                text = page.evaluate("document.querySelector('.CodeMirror').CodeMirror.getValue()")
                broken = text.replace('when: "danger > 0.6"', 'when: "danger > 0.6 and aera == \'cave\'"')
                page.evaluate("t => { const cm = document.querySelector('.CodeMirror').CodeMirror;"
                              " cm.replaceRange(t, {line: 0, ch: 0}, {line: cm.lineCount()}); }", broken)
                page.wait_for_selector("ul.problems li")
                page.wait_for_timeout(500)
                page.screenshot(path=str(out / "studio-error.png"))
                browser.close()
        finally:
            studio.stop()
    print(f"wrote {out / 'studio.png'} and {out / 'studio-error.png'}")


if __name__ == "__main__":
    main()
