import math

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scorewright.protocol import (
    MAX_MESSAGE_BYTES,
    FrameReader,
    ProtocolError,
    decode,
    encode,
    frame,
)

GOOD = [
    {"type": "hello", "client": "unity", "want_audio": True},
    {"type": "event", "name": "player_died", "data": {"x": 1}},
    {"type": "set", "param": "danger", "value": 0.75, "id": 3},
    {"type": "set", "param": "danger", "value": 1},
    {"type": "state", "group": "area", "value": "cave", "id": "a"},
    {"type": "notes", "on": [60, 64], "off": [59]},
    {"type": "prompt", "text": "sad cello", "weight": 0.5},
    {"type": "prompt", "audio": b"\0" * 8 * 4800, "sr": 48000},     # 0.1 s, the shortest
    {"type": "transport", "cmd": "pause"},
    {"type": "ping"},
]


@pytest.mark.parametrize("msg", GOOD, ids=lambda m: m["type"])
def test_round_trip(msg):
    decoded = decode(encode(msg))
    assert decoded.kind == msg["type"]
    assert decoded.id == msg.get("id")
    assert decoded.fields == {k: v for k, v in msg.items() if k not in ("type", "id")}


def test_unknown_keys_are_ignored():
    assert decode(encode({"type": "ping", "extra": [1, 2]})).kind == "ping"


BAD = [
    (b"\xc1garbage", "bad_msgpack"),
    (encode({"type": "set", "param": "danger"})[:-3], "bad_msgpack"),                 # truncated
    (msgpack.packb([1, 2, 3]), "bad_message"),
    (encode({"type": "launch_missiles"}), "unknown_type"),
    (encode({"param": "danger", "value": 1}), "unknown_type"),
    (encode({"type": "set", "param": "danger"}), "missing_field"),
    (encode({"type": "set", "param": "danger", "value": "high"}), "bad_field"),
    (encode({"type": "set", "param": "danger", "value": True}), "bad_field"),
    (encode({"type": "set", "param": "danger", "value": math.nan}), "bad_field"),
    (encode({"type": "set", "param": "danger", "value": math.inf}), "bad_field"),
    (encode({"type": "set", "param": 7, "value": 1.0}), "bad_field"),
    (encode({"type": "notes", "on": [60, 200]}), "bad_field"),
    (encode({"type": "notes", "on": list(range(128)) * 2}), "bad_field"),
    (encode({"type": "transport", "cmd": "rewind"}), "bad_field"),
    (encode({"type": "prompt", "weight": 1.0}), "bad_field"),
    (encode({"type": "prompt", "text": "x", "weight": -1}), "bad_field"),
    (encode({"type": "state", "group": "area", "value": "x" * 5000}), "bad_field"),
    (encode({"type": "ping", "id": [1]}), "bad_field"),
    (msgpack.packb({"v": 9, "type": "ping"}), "bad_version"),
    (b"\0" * (MAX_MESSAGE_BYTES + 1), "too_large"),
]


@pytest.mark.parametrize("data,code", BAD)
def test_bad_messages_get_a_coded_error(data, code):
    with pytest.raises(ProtocolError) as e:
        decode(data)
    assert e.value.code == code
    assert str(e.value)


def test_error_keeps_the_message_id():
    with pytest.raises(ProtocolError) as e:
        decode(encode({"type": "set", "param": "danger", "value": "x", "id": 42}))
    assert e.value.msg_id == 42


def test_frame_reader_splits_and_joins():
    payloads = [encode(m) for m in GOOD]
    stream = b"".join(frame(p) for p in payloads)
    reader = FrameReader()
    got = []
    for i in range(0, len(stream), 7):          # arbitrary TCP segmentation
        got += reader.feed(stream[i:i + 7])
    assert got == payloads


def test_frame_reader_refuses_huge_length():
    with pytest.raises(ProtocolError) as e:
        FrameReader().feed(b"\xff\xff\xff\x7f" + b"x")
    assert e.value.code == "too_large"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_random_bytes_never_raise_anything_else(data):
    try:
        decode(data)
    except ProtocolError:
        pass


scalars = (st.none() | st.booleans() | st.floats() | st.integers(-2**63, 2**64 - 1)
           | st.text(max_size=20) | st.binary(max_size=20))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4)
                      | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["set", "state", "event", "notes", "prompt", "transport", "hello"]),
       st.dictionaries(st.sampled_from(["param", "value", "group", "name", "on", "off", "text",
                                        "audio", "weight", "cmd", "sr", "id", "data"]), values))
def test_wrong_types_are_rejected_cleanly(kind, fields):
    try:
        decode(msgpack.packb({"type": kind, **fields}, use_bin_type=True))
    except ProtocolError:
        pass
