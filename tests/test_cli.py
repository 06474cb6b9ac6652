"""The command line as a newcomer meets it: help, errors that read right, validate, trace, demo
playback, doctor, and log lines in a file."""

import os
import subprocess
import sys
import time

import pytest

from scorewright.backends import base
from scorewright.backends.synth import requirements
from scorewright.cli import build_parser, main
from scorewright.script import TAIL_SECONDS, load_script

from .conftest import MAPS

BAD_MAP = """version: 1
styles:
  calm: {prompt: "calm", weight: 1, colour: red}
params:
  danger: {min: 0, max: "one"}
rules:
  - when: "danger >> 2"
    blend: {calm: 1}
  - when: "dangr > 0.5"
    blend: {calm: "danger * "}
"""


def run_cli(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scorewright.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120, **kw)


def test_every_option_has_help_and_defaults_show():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"scorewright {name} {action.option_strings or action.dest} has no help"
    text = commands["serve"].format_help()
    for default in ("(default: 7700)", "(default: 7701)", "(default: 7702)", "(default: 3)",
                    "(default: 127.0.0.1)"):
        assert default in " ".join(text.split()), default
    assert "(default: 46.0)" in " ".join(commands["demo"].format_help().split())


def test_errors_keep_their_brackets(monkeypatch, capsys):
    """rich markup would eat "[mrt2]" out of the install hint."""
    import scorewright.backends.mrt2 as mrt2

    def not_installed(seed):
        raise base.BackendNotInstalled("the mrt2 backend needs PyTorch: pip install 'scorewright[mrt2]'")
    monkeypatch.setattr(mrt2, "create", not_installed)
    assert main(["render", "demo", "--backend", "mrt2", "--seconds", "1", "--out", os.devnull]) == 2
    assert "pip install 'scorewright[mrt2]'" in capsys.readouterr().err


def test_validate_reports_every_problem_at_once_in_line_order(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_MAP)
    r = run_cli("validate", str(bad), "demo")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    problems = [line for line in lines if line.startswith(str(bad))]
    positions = [tuple(int(x) for x in line[len(str(bad)) + 1:].split(":")[:2]) for line in problems]
    assert positions == sorted(positions) and len(problems) == 5, r.stdout
    # key/type errors and expression errors in the same run
    assert any("unknown key 'colour'" in p for p in problems) and any("unknown name 'dangr'" in p
                                                                       for p in problems)
    assert any("syntax error" in p for p in problems) and any("RShift" in p for p in problems)
    assert "ok demo: 3 styles, 1 param, 1 state group, 2 rules, 1 stinger" in lines
    assert lines[-1] == "5 problems in 1 of 2 maps"


def test_trace_defaults_to_the_scripts_length():
    script = MAPS / "scripts" / "demo.yaml"
    items, _ = load_script(script)
    r = run_cli("trace", "demo", "--events", str(script), "--every-frame")
    assert r.returncode == 0, r.stderr
    last_t = float(r.stdout.splitlines()[-1].split("s")[0])
    assert last_t == pytest.approx(max(i.t for i in items) + TAIL_SECONDS - 0.04, abs=0.041)
    assert "stinger:player_died" in r.stdout          # at 30 s, past the old 30 s default


def test_demo_notices_a_dead_player_at_once(tmp_path):
    """A player that dies at start (no sound card) is reported when it dies, not at the next
    timeline row (9 s later in the demo)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    player = bin_dir / "aplay"
    player.write_text("#!/bin/sh\necho 'aplay: main:831: audio open error: No such file or directory' >&2\n"
                      "exit 1\n")
    player.chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-m", "scorewright.cli", "demo", "--seconds", "12", "--out",
                             str(tmp_path / "demo.wav")], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PATH": str(bin_dir)})
    seen: list[tuple[float, str]] = []
    for line in proc.stderr:
        seen.append((time.monotonic(), line))
    assert proc.wait(60) == 0
    wrote = next(t for t, line in seen if line.startswith("wrote "))
    failed = next(t for t, line in seen if "playback with aplay failed" in line)
    assert "audio open error" in next(line for _, line in seen if "failed" in line)
    assert failed - wrote < 5.0        # the next row ("rising danger") is due 9 s in
    assert any("rising danger" in line for _, line in seen)


def test_logs_in_a_file_are_whole_lines(tmp_path):
    long = "x" * 300
    code = ("import logging\nfrom scorewright.cli.output import setup_logging\nsetup_logging('info')\n"
            f"logging.getLogger('scorewright').info('{long}')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert long in r.stderr and "INFO" in r.stderr


def test_trace_plot_has_no_empty_notes_panel():
    from scorewright.cli.render import open_map
    from scorewright.trace import figure, trace
    rows = trace(open_map("demo", None, None), 2.0, [])
    assert not any(r.notes for r in rows)
    assert len(figure(rows, "no notes").axes) == 2


def test_missing_synth_packages_are_named_with_the_fix(monkeypatch, capsys):
    monkeypatch.setattr(requirements, "missing_packages", lambda: ["tinysoundfont"])
    assert main(["render", "demo", "--seconds", "1", "--out", os.devnull]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps tinysoundfont" in err and "scorewright doctor" in err
    assert main(["doctor"]) == 1
    out = " ".join(capsys.readouterr().err.split())
    assert "FAIL synth packages missing: tinysoundfont" in out
    assert "fix: pip install --no-deps tinysoundfont" in out and "doctor --fix" in out


def test_doctor_on_a_ready_machine(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().err
    for name in ("synth packages", "SoundFont", "style embedder", "PyTorch", "MRT2 weights", "default ports"):
        assert name in out
    assert "ready" in out


def test_a_recording_replays_with_its_own_seed(tmp_path):
    from scorewright.protocol import check
    from scorewright.recording import Recorder
    from scorewright.script import recorded_seed
    take = tmp_path / "take.msgs"
    rec = Recorder(take, "demo", 1234)
    rec(3, check({"type": "set", "param": "danger", "value": 0.9}))
    rec.close()
    assert recorded_seed(take) == 1234 and recorded_seed(MAPS / "scripts" / "demo.yaml") is None
    r = run_cli("render", "demo", "--events", str(take), "--seconds", "1", "--out", str(tmp_path / "t.wav"))
    assert r.returncode == 0 and "seed 1234" in r.stderr, r.stderr
