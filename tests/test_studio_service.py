"""The studio's own messages without a browser: StudioService driven as the dispatcher drives
it, over a real engine (tone backend). Its limits: map text size, a per-page request rate, one
export at a time with a time limit, takes bounded in number, size and length, replays bounded
in prompts and quiet in the log, and no writes to a map shipped with Scorewright or a bundle."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import msgpack
import pytest

from scorewright.engine import REPLAY_WARNINGS, Engine
from scorewright.protocol import ProtocolError, check
from scorewright.recording import Recorder
from scorewright.statemap.director import Director
from scorewright.statemap.load import bundled_map, load
from scorewright.studio import export, service, takes
from scorewright.studio.service import StudioService
from scorewright.transport.base import Peer

from .fakes import ToneBackend
from .studio_helpers import STUDIO_MAP


class Page(Peer):
    """A studio page as the service sees it: replies collected."""

    transport = "web"

    def __init__(self) -> None:
        self.replies: list[dict] = []
        self.got = threading.Event()

    def reply(self, payload: bytes) -> None:
        self.replies.append(msgpack.unpackb(payload))
        self.got.set()


class Studio:
    def __init__(self, map_path: Path) -> None:
        self.engine = Engine(ToneBackend(), Director(load(map_path), ToneBackend()))
        self.pushed: list[dict] = []
        self.pushed_event = threading.Event()
        self.service = StudioService(self.engine, "tone", self._push)
        self.page = Page()

    def _push(self, message: dict) -> None:
        self.pushed.append(message)
        self.pushed_event.set()

    def ask(self, kind: str, page: Peer | None = None, **fields) -> dict:
        return self.service.handle(page or self.page, check({"type": kind, "id": 1, **fields}))

    def refused(self, kind: str, code: str, **fields) -> str:
        with pytest.raises(ProtocolError) as e:
            self.ask(kind, **fields)
        assert e.value.code == code, e.value
        return str(e.value)

    def game(self, **msg) -> None:
        self.engine.handle(check(msg))

    def take(self) -> str:
        """Record a short take; its name."""
        self.ask("studio.record", cmd="start")
        self.game(type="set", param="danger", value=0.8)
        return self.ask("studio.record", cmd="stop")["takes"][-1]


@pytest.fixture
def studio(tmp_path, monkeypatch):
    monkeypatch.setattr(service, "STUDIO_BURST", 1000)       # the rate has its own test
    map_path = tmp_path / "studio_test.yaml"
    map_path.write_text(STUDIO_MAP)
    s = Studio(map_path)
    yield s
    s.service.exporter.wait(30)
    s.service.close()


def wait_for(event: threading.Event) -> None:
    assert event.wait(60), "no answer within a minute"


# -- map text and request rate (#8) -------------------------------------------------------------
def test_map_text_over_the_cap_is_refused_naming_its_size_and_the_cap(studio):
    big = STUDIO_MAP + "#" * service.MAX_MAP_TEXT
    size = len(big.encode())
    for kind in ("studio.validate", "studio.save"):
        why = studio.refused(kind, "too_large", text=big)
        assert f"{size} bytes" in why and str(service.MAX_MAP_TEXT) in why and "text editor" in why
    assert studio.service.map_path.read_text() == STUDIO_MAP          # nothing written
    fits = STUDIO_MAP + "#" * (service.MAX_MAP_TEXT - len(STUDIO_MAP) - 10) + "\n"
    assert studio.ask("studio.validate", text=fits)["problems"] == []


def test_a_text_with_thousands_of_problems_lists_the_first_ones_and_a_count(studio):
    text = "version: 1\n" + "".join(f"k{i}: 1\n" for i in range(3000))      # 49 KB, ~3000 problems
    problems = studio.ask("studio.validate", text=text)["problems"]
    assert len(problems) == service.MAX_PROBLEMS + 1
    assert problems[-1]["message"].startswith("... and ") and "more problems" in problems[-1]["message"]
    assert len(msgpack.packb(problems)) < 256 * 1024         # far below a message's 1 MiB


def test_studio_requests_have_a_low_rate_per_page(studio, monkeypatch):
    monkeypatch.setattr(service, "STUDIO_BURST", 10)
    clock = [1000.0]
    monkeypatch.setattr(service.time, "monotonic", lambda: clock[0])
    small = "version: 1\n"
    for _ in range(10):
        studio.ask("studio.validate", text=small)
    why = studio.refused("studio.validate", "busy", text=small)
    assert f"at most {service.STUDIO_RATE:g} a second" in why
    assert studio.ask("studio.validate", Page(), text=small)["type"] == "studio.problems"   # per page
    clock[0] += 1.0                                         # a second later: two more
    studio.ask("studio.validate", text=small)
    studio.ask("studio.validate", text=small)
    studio.refused("studio.validate", "busy", text=small)
    clock[0] += 2.0                                         # a big text costs more than a small one
    big = small + "#" * (4 * service.TEXT_COST_BYTES)          # costs 5; 4 are left
    studio.refused("studio.validate", "busy", text=big)
    studio.ask("studio.validate", text=small)


# -- export (#2) --------------------------------------------------------------------------------
def test_one_export_at_a_time_then_the_next(studio, monkeypatch, tmp_path):
    gate = tmp_path / "go"
    waits = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)"
    monkeypatch.setattr(service, "render_command", lambda *a: [sys.executable, "-c", waits])
    take = studio.take()
    assert studio.ask("studio.export", take=take)["type"] == "studio.exporting"
    why = studio.refused("studio.export", "busy", take=take)
    assert f"an export is running ({take})" in why and "wait for studio.exported" in why
    gate.write_text("")
    wait_for(studio.page.got)
    studio.service.exporter.wait(60)
    assert studio.page.replies[-1]["type"] == "studio.exported"
    assert studio.ask("studio.export", take=take)["type"] == "studio.exporting"   # free again


def test_an_export_that_runs_too_long_is_stopped_and_one_that_fails_says_why(studio, monkeypatch):
    sleeps = [sys.executable, "-c", "import time; time.sleep(120)"]
    monkeypatch.setattr(service, "render_command", lambda *a: [*sleeps, "render", "MAP"])
    studio.service.exporter.timeout_s = 0.5
    take = studio.take()
    studio.ask("studio.export", take=take)
    wait_for(studio.page.got)
    failed = studio.page.replies[-1]
    assert failed["code"] == "export_failed" and "longer than 0.5 s and was stopped" in failed["message"]
    assert "scorewright render MAP" in failed["message"]
    studio.service.exporter.wait(60)
    studio.page.got.clear()
    fails = [sys.executable, "-c", "import sys; sys.exit('no such backend: nope')"]
    monkeypatch.setattr(service, "render_command", lambda *a: fails)
    studio.ask("studio.export", take=take)
    wait_for(studio.page.got)
    assert studio.page.replies[-1]["code"] == "export_failed"
    assert "no such backend: nope" in studio.page.replies[-1]["message"]


def test_a_stopping_server_leaves_no_render_behind(studio, monkeypatch):
    sleeps = [sys.executable, "-c", "import time; time.sleep(300)"]
    monkeypatch.setattr(service, "render_command", lambda *a: sleeps)
    studio.ask("studio.export", take=studio.take())
    studio.service.close()                                  # what Server.stop does
    studio.service.exporter.wait(60)
    assert studio.page.replies[-1]["code"] == "export_failed"
    assert studio.service.exporter.running is None


def test_a_bundled_server_renders_with_its_own_executable(monkeypatch, tmp_path):
    from scorewright.cli import build_parser
    args = (tmp_path / "m.yaml", tmp_path / "take.msgs", tmp_path / "take.wav", 7, "synth")
    plain = export.render_command(*args)
    assert plain[:3] == [sys.executable, "-m", "scorewright.cli"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/game/scorewright/scorewright-server")
    frozen = export.render_command(*args)
    assert frozen[:4] == ["/game/scorewright/scorewright-server", "--log-level", "warning", "render"]
    parsed = build_parser().parse_args(frozen[1:])          # what the bundle's `scorewright` accepts
    assert parsed.command == "render" and parsed.seed == 7 and parsed.events == str(args[1])


# -- replay (#7) --------------------------------------------------------------------------------
def write_take(studio: Studio, messages: list[dict]) -> str:
    studio.service.takes.mkdir(exist_ok=True)
    name = "take-20260101-000000.msgs"
    rec = Recorder(studio.service.takes / name, "studio_test", 3)
    for msg in messages:
        rec(0, check(msg))
    rec.close()
    return name


def test_a_replay_holds_at_most_so_many_prompts(studio):
    many = [{"type": "prompt", "text": f"style {i % 5}"} for i in range(service.MAX_REPLAY_PROMPTS + 1)]
    why = studio.refused("studio.replay", "too_many_prompts", take=write_take(studio, many))
    assert f"{service.MAX_REPLAY_PROMPTS + 1} prompts (5 different)" in why
    assert f"at most {service.MAX_REPLAY_PROMPTS}" in why and "scorewright render" in why
    fits = many[:service.MAX_REPLAY_PROMPTS] + [{"type": "prompt", "text": "off", "weight": 0}]
    assert studio.ask("studio.replay", take=write_take(studio, fits))["type"] == "studio.replaying"


def test_replay_warnings_do_not_flood_the_log(studio, caplog):
    stale = [{"type": "set", "param": "gone", "value": 0.5}] * 300     # a take of another map version
    studio.ask("studio.replay", take=write_take(studio, stale))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            studio.engine.step(audio=False)
    warned = [r for r in caplog.records if str(r.msg).startswith("replay:")]
    assert len(warned) == REPLAY_WARNINGS             # the first 20 of a take; the rest counted


# -- takes (#9) ---------------------------------------------------------------------------------
def test_takes_are_capped_in_number_and_in_replies(studio):
    studio.service.takes.mkdir()
    for i in range(takes.MAX_TAKES + 20):
        (studio.service.takes / f"take-20260101-{i:06d}.msgs").write_bytes(b"")
    listed = studio.ask("studio.open")["takes"]
    assert len(listed) == takes.MAX_TAKES and listed[-1] == f"take-20260101-{takes.MAX_TAKES + 19:06d}.msgs"
    why = studio.refused("studio.record", "too_many_takes", cmd="start")
    assert f"holds {takes.MAX_TAKES + 20} takes" in why and "delete some takes in studio-takes/" in why
    assert studio.engine.recorder is None


def test_a_take_stops_at_its_size_limit_and_the_pages_hear_why(studio, monkeypatch):
    monkeypatch.setattr(takes, "MAX_TAKE_BYTES", 4000)
    studio.ask("studio.record", cmd="start")
    path = studio.service.recording
    for i in range(1000):
        if studio.service.recording is None:
            break
        studio.game(type="event", name="hit", data={"n": i, "pad": "x" * 100})
    assert studio.service.recording is None and studio.engine.recorder is None
    assert path.stat().st_size <= 4000
    wait_for(studio.pushed_event)
    pushed = studio.pushed[-1]
    assert pushed["type"] == "studio.takes" and pushed["recording"] is None
    assert f"recording {path.name} stopped: it reached the biggest take" in pushed["stopped"]
    studio.game(type="set", param="danger", value=0.1)                 # the game goes on
    assert studio.ask("studio.replay", take=path.name)["type"] == "studio.replaying"   # and it replays


def test_a_take_stops_at_its_length_limit(studio, monkeypatch):
    monkeypatch.setattr(takes, "MAX_TAKE_SECONDS", 1)
    studio.ask("studio.record", cmd="start")
    path = studio.service.recording
    studio.game(type="set", param="danger", value=0.2)
    for _ in range(30):                                    # 1.2 s of frames
        studio.engine.step(audio=False)
    studio.game(type="set", param="danger", value=0.9)
    assert studio.service.recording is None
    wait_for(studio.pushed_event)
    assert "it reached the longest take" in studio.pushed[-1]["stopped"]
    assert studio.ask("studio.replay", take=path.name)["messages"] == 1


def test_a_take_file_too_big_to_replay_is_refused(studio):
    studio.service.takes.mkdir()
    name = "take-20260101-000001.msgs"
    (studio.service.takes / name).write_bytes(b"\0" * (takes.MAX_TAKE_BYTES + 1))
    why = studio.refused("studio.replay", "too_large", take=name)
    assert f"{takes.MAX_TAKE_BYTES + 1} bytes" in why and str(takes.MAX_TAKE_BYTES) in why



def test_an_empty_or_foreign_take_is_a_bad_take_naming_why(studio):
    studio.service.takes.mkdir()
    (studio.service.takes / "take-20260101-000002.msgs").write_bytes(b"")
    why = studio.refused("studio.replay", "bad_take", take="take-20260101-000002.msgs")
    assert "empty or not a Scorewright recording" in why
    name = write_take(studio, [{"type": "set", "param": "danger", "value": 0.5}, {"type": "hello"}])
    assert "record 2 is damaged: 'hello' is not a game-state message" in studio.refused(
        "studio.replay", "bad_take", take=name)

# -- maps shipped with Scorewright or a bundle (#10) ---------------------------------------------
def test_a_shipped_map_is_not_written(tmp_path, monkeypatch):
    demo = Studio(bundled_map("demo"))
    try:
        assert "scorewright studio demo" in demo.ask("studio.open")["read_only"]
        for kind, fields in (("studio.save", {"text": "version: 1\n"}), ("studio.record", {"cmd": "start"})):
            why = demo.refused(kind, "read_only", **fields)
            assert "Scorewright's own copy of 'demo'" in why and "copies it to ./demo/" in why
        assert demo.ask("studio.validate", text="version: 1\n")["type"] == "studio.problems"
        assert not demo.service.takes.exists()
    finally:
        demo.service.close()
    folder = tmp_path / "game" / "maps"
    folder.mkdir(parents=True)
    (folder / "level.yaml").write_text(STUDIO_MAP)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "game" / "scorewright-server"))
    bundled = Studio(folder / "level.yaml")
    try:
        why = bundled.refused("studio.save", "read_only", text=STUDIO_MAP)
        assert "ships inside the game's bundle" in why and "build the bundle again" in why
    finally:
        bundled.service.close()


def test_a_map_of_ones_own_is_writable(studio):
    assert studio.ask("studio.open")["read_only"] is None
    assert studio.ask("studio.save", text=STUDIO_MAP + "# mine\n")["type"] == "studio.saved"
    assert studio.service.map_path.read_text().endswith("# mine\n")


def test_serve_demo_refuses_to_write_the_packages_map_over_the_page_socket(serve):
    import json

    from websockets.sync.client import connect
    srv = serve()                                       # `scorewright serve` of the shipped demo.yaml
    srv.wait_ready().close()
    before = bundled_map("demo").read_text()
    with connect(srv.web_url.replace("http", "ws") + "ws") as ws:
        for i, msg in enumerate(({"type": "studio.save", "text": "version: 1\n"},
                                 {"type": "studio.record", "cmd": "start"})):
            ws.send(json.dumps({**msg, "id": i}))
            reply = json.loads(ws.recv(timeout=10))
            assert reply["code"] == "read_only" and "scorewright studio demo" in reply["message"], reply
    assert bundled_map("demo").read_text() == before
    assert not (bundled_map("demo").parent / "studio-takes").exists()
