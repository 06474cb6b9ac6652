"""Record/replay, hot reload and markers of a running server."""

import threading
import time

import numpy as np
import pytest

from scorewright.client import AudioSubscriber
from scorewright.protocol import check
from scorewright.recording import Recorder, load_recording
from scorewright.script import load_script
from scorewright.session import open_engine

from .conftest import MAPS


def test_recording_replays_the_same_conditioning_and_audio(tmp_path):
    path = tmp_path / "session.msgs"
    live = open_engine(MAPS / "demo.yaml", seed=4)
    live.recorder = Recorder(path, "demo", 4)
    plan = {5: {"type": "set", "param": "danger", "value": 0.9},
            40: {"type": "state", "group": "area", "value": "cave"},
            41: {"type": "state", "group": "area", "value": "nowhere"},   # rejected, recorded too
            60: {"type": "event", "name": "player_died"},
            80: {"type": "transport", "cmd": "pause"},
            95: {"type": "transport", "cmd": "play"},
            100: {"type": "notes", "on": [62]},
            110: {"type": "prompt", "text": "8-bit chiptune", "weight": 0.7}}
    conds, audio = [], []
    for k in range(150):
        if k in plan:
            try:
                live.handle(check(plan[k]))
            except Exception:
                pass
        frame = live.step()
        conds.append(None if frame.cond is None else (frame.cond.style.tobytes(), frame.cond.notes.tobytes(),
                                                      frame.cond.drums, frame.cond.tempo_bpm))
        audio.append(frame.pcm)
    live.recorder.close()

    items, header = load_recording(path)
    assert header["map"] == "demo" and len(items) == len(plan)
    replay = open_engine(MAPS / "demo.yaml", seed=4)
    replayed = []
    pcm = replay.render(150 * 0.04, load_script(path)[0], on_error=lambda item, err: None,
                        on_frame=lambda k, f: replayed.append(None if f.cond is None else (
                            f.cond.style.tobytes(), f.cond.notes.tobytes(), f.cond.drums, f.cond.tempo_bpm)))
    assert replayed == conds
    assert np.array_equal(pcm, np.concatenate(audio))


def test_serve_records_a_session(serve, tmp_path):
    path = tmp_path / "rec.msgs"
    srv = serve(extra=["--record", str(path)])
    client = srv.wait_ready()
    client.set("danger", 0.8, wait=True)
    client.event("player_died", wait=True)
    client.close()
    srv.stop()
    items, _ = load_recording(path)
    assert [i.message.kind for i in items] == ["set", "event"]
    assert items[0].frame <= items[1].frame


def test_takes_that_are_not_game_state_recordings_are_refused_naming_the_record(tmp_path):
    """A take is input from a file: an empty one, a damaged one, or one holding messages that
    are not game state (hello, status, studio.*) is refused naming the record, never replayed
    as frames that fail."""
    import msgpack

    from scorewright.engine import ScriptItem
    from scorewright.recording import MAGIC

    def take(name: str, *records: dict) -> object:
        path = tmp_path / name
        path.write_bytes(b"".join(msgpack.packb(r) for r in ({**MAGIC, "map": "demo", "seed": 1}, *records)))
        return path

    (tmp_path / "empty.msgs").write_bytes(b"")
    with pytest.raises(ValueError, match="empty or not a Scorewright recording"):
        load_recording(tmp_path / "empty.msgs")
    ok = {"frame": 1, "t": 0.0, "msg": {"type": "set", "param": "danger", "value": 0.5}}
    for bad, why in (({"frame": 2, "t": 0.1, "msg": {"type": "hello"}}, "'hello' is not a game-state"),
                     ({"frame": 2, "t": 0.1, "msg": {"type": "studio.open"}}, "not a game-state"),
                     ({"frame": 2, "t": 0.1}, "'msg'"),
                     ({"frame": "x", "t": 0.1, "msg": {"type": "event", "name": "player_died"}}, "x")):
        with pytest.raises(ValueError, match=f"record 2 is damaged: .*{why}"):
            load_recording(take("bad.msgs", ok, bad))
    cut = take("cut.msgs", ok, ok)                       # a server killed mid-write: the whole
    cut.write_bytes(cut.read_bytes()[:-3])                # records before the cut still play
    assert len(load_recording(cut)[0]) == 1

    engine = open_engine(MAPS / "demo.yaml", seed=1)     # a script item that slips through anyway
    engine.restart([ScriptItem(0.0, check({"type": "ping"}), 0)])
    assert engine.step().pcm.any() and engine.backend_faults == 0


def collect(sub: AudioSubscriber, stop: threading.Event, seqs: list) -> None:
    while not stop.is_set():
        if sub.recv(1.0) is not None:
            seqs.append(sub.last_header["seq"])


def test_hot_reload_good_and_bad_edits(serve, tmp_path):
    map_path = tmp_path / "live.yaml"
    original = (MAPS / "demo.yaml").read_text()
    map_path.write_text(original)
    srv = serve(map_path)
    client = srv.wait_ready()
    sub = AudioSubscriber(srv.audio_addr)
    seqs: list[int] = []
    stop = threading.Event()
    reader = threading.Thread(target=collect, args=(sub, stop, seqs))
    reader.start()
    time.sleep(1.0)

    map_path.write_text(original.replace("styles:\n", "styles:\n  extra: {prompt: \"8-bit chiptune\"}\n"))
    deadline = time.monotonic() + 15
    while "extra" not in client.get_status()["styles"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "extra" in client.get_status()["styles"]           # applied (at the next bar)

    map_path.write_text(original.replace("when: \"danger > 0.6\"", "when: \"dangr > 0.6\""))
    deadline = time.monotonic() + 10
    pushed = []
    while not pushed and time.monotonic() < deadline:
        pushed = [r for r in client.poll_replies() if r.get("code") == "map_error"]
        time.sleep(0.1)
    assert pushed and "dangr" in pushed[0]["message"] and "live.yaml:" in pushed[0]["message"]
    status = client.get_status()
    assert "extra" in status["styles"] and "dangr" in status["map_error"]   # last good map kept
    time.sleep(1.0)
    stop.set()
    reader.join()
    sub.close()
    assert status["underruns"] == 0
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))   # audio never stopped
    assert len(seqs) > 50
    client.close()


def test_markers_reach_subscribers_ahead_of_the_audio(serve):
    srv = serve()
    srv.wait_ready().close()
    with AudioSubscriber(srv.audio_addr, audio=False, markers=True) as sub:
        marks = [sub.next_marker(5.0) for _ in range(4)]
    assert all(m is not None for m in marks)
    beats = [m for m in marks if m["kind"] == "beat"]
    assert len(beats) >= 2
    assert all(b["pos"] > a["pos"] for a, b in zip(beats, beats[1:], strict=False))
    assert all(m["due"] > time.time() - 0.2 for m in marks[-1:])   # announced before it plays
    tempo_s = (beats[1]["pos"] - beats[0]["pos"]) / 48000
    assert 0.3 < tempo_s < 1.5


@pytest.mark.parametrize("bad", ["empty", "deleted"])
def test_broken_map_file_keeps_the_music(serve, tmp_path, bad):
    map_path = tmp_path / "live.yaml"
    map_path.write_text((MAPS / "demo.yaml").read_text())
    srv = serve(map_path)
    client = srv.wait_ready()
    if bad == "empty":
        map_path.write_text("")
    else:
        map_path.unlink()
    deadline = time.monotonic() + 10
    while not client.get_status()["map_error"] and time.monotonic() < deadline:
        time.sleep(0.2)
    status = client.get_status()
    assert status["map_error"] and status["underruns"] == 0
    with AudioSubscriber(srv.audio_addr) as sub:
        assert sub.recv(2.0) is not None
    client.close()
