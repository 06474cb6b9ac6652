"""The 60-second soak from bench/soak.py, as a test (the 10-minute run is in docs/reliability.md)."""

import json
import subprocess
import sys

from .conftest import ROOT


def test_soak_60_seconds():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "1"],
                       capture_output=True, text=True, timeout=240)
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["underruns"] == 0, report
    assert report["unhandled_exceptions"] == 0, report
    assert report["errors_answered"] == report["bad_messages_sent"] > 0, report
    assert report["error_replies_seen"] == report["bad_messages_sent"], report
    assert report["pub_lost"] == 0 and report["reconnect_failures"] == 0, report
    assert report["rss_growth_mb"] < 20, report
    assert report["frames"] > 60 * 25 * 0.95, report
    assert r.returncode == 0, report
