"""Wire messages: msgpack maps with a `type` and `"v": 1`, checked field by field.

The same messages travel over ZMQ, framed TCP (u32 little-endian length + msgpack) and in
event scripts. See docs/protocol.md.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from .audio import CHANNELS, SAMPLE_RATE
from .conditioning import MAX_STYLE_WEIGHT

VERSION = 1
MAX_MESSAGE_BYTES = 1 << 20          # 1 MiB: bigger frames are refused
MAX_STRING = 2000
MAX_NOTES = 128
MAX_AUDIO_PROMPT_SECONDS = 30
MIN_AUDIO_PROMPT_SECONDS = 0.1
LENGTH = struct.Struct("<I")

_NUMBER = (int, float)
# kind -> {field: (type(s), required)}
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "hello": {"client": ((str,), False), "want_audio": ((bool,), False), "markers": ((bool,), False),
              "token": ((str,), False)},
    "event": {"name": ((str,), True), "data": ((dict,), False)},
    "set": {"param": ((str,), True), "value": (_NUMBER, True)},
    "state": {"group": ((str,), True), "value": ((str,), True)},
    "notes": {"on": ((list,), False), "off": ((list,), False)},
    "prompt": {"text": ((str,), False), "audio": ((bytes,), False), "sr": ((int,), False),
               "weight": (_NUMBER, False), "name": ((str,), False)},
    "transport": {"cmd": ((str,), True)},
    "override": {"param": ((str,), False), "group": ((str,), False), "value": ((str, int, float), True)},
    "release": {"param": ((str,), False), "group": ((str,), False)},
    "ping": {},
    "status": {},
    # the studio's own (web pages only; see studio/service.py)
    "studio.open": {},
    "studio.validate": {"text": ((str,), True)},
    "studio.save": {"text": ((str,), True)},
    "studio.record": {"cmd": ((str,), True)},
    "studio.replay": {"take": ((str,), True)},
    "studio.export": {"take": ((str,), True)},
    "studio.seed": {"seed": ((int,), True)},
}
LONG_TEXT = {("studio.validate", "text"), ("studio.save", "text")}   # a whole map: up to 1 MiB
TRANSPORT_CMDS = ("play", "stop", "pause")


class ProtocolError(ValueError):
    """A message that cannot be accepted; `code` and the text go into an `error` reply."""

    def __init__(self, code: str, message: str, msg_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.msg_id = msg_id


@dataclass(frozen=True)
class Message:
    kind: str
    fields: dict[str, Any]
    id: Any = None


def encode(obj: dict[str, Any]) -> bytes:
    """A message map -> msgpack bytes (adds "v")."""
    return msgpack.packb({"v": VERSION, **obj}, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """msgpack bytes -> Python, with limits that keep hostile input cheap."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"message is {len(data)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    return _unpackb(data, strict_map_key=True, max_str_len=MAX_MESSAGE_BYTES, max_bin_len=MAX_MESSAGE_BYTES,
                    max_array_len=4096, max_map_len=256)


def unpack_output(data: bytes) -> Any:
    """msgpack bytes the server made (a reply, push or telemetry) -> Python. Not hostile
    input: a map's size is the designer's (300 params make a 300-entry status), so only
    msgpack's own limits (bounded by the buffer's length) apply."""
    return _unpackb(data, strict_map_key=False)


def _unpackb(data: bytes, **limits: Any) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, **limits)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError, TypeError) as e:
        raise ProtocolError("bad_msgpack", f"not a msgpack message: {e}") from None


def decode(data: bytes) -> Message:
    """Bytes from the wire -> a checked Message. Raises ProtocolError."""
    return check(unpack(data))


def check(obj: Any) -> Message:
    """A decoded map -> a checked Message (also used for event scripts)."""
    if not isinstance(obj, dict):
        raise ProtocolError("bad_message", f"a message must be a map, got {type(obj).__name__}")
    msg_id = obj.get("id")
    if msg_id is not None and (isinstance(msg_id, bool) or not isinstance(msg_id, (int, str))):
        raise ProtocolError("bad_field", "'id' must be an integer or a string")
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in SCHEMA:
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}; expected one of: "
                            f"{', '.join(SCHEMA)}", msg_id)
    version = obj.get("v", VERSION)
    if isinstance(version, bool) or version != VERSION:
        raise ProtocolError("bad_version", f"protocol version {version!r} is not supported; "
                            f"this server speaks {VERSION}", msg_id)
    fields: dict[str, Any] = {}
    for name, (types, required) in SCHEMA[kind].items():
        if name not in obj:
            if required:
                raise ProtocolError("missing_field", f"'{kind}' needs field '{name}'", msg_id)
            continue
        value = obj[name]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in types)
            raise ProtocolError("bad_field", f"'{kind}.{name}' must be {want}, got "
                                f"{type(value).__name__}", msg_id)
        if isinstance(value, float) and not math.isfinite(value):
            raise ProtocolError("bad_field", f"'{kind}.{name}' must be finite, got {value}", msg_id)
        if isinstance(value, str) and len(value) > MAX_STRING and (kind, name) not in LONG_TEXT:
            raise ProtocolError("bad_field", f"'{kind}.{name}' is longer than {MAX_STRING} characters",
                                msg_id)
        fields[name] = value
    _check_kind(kind, fields, msg_id)
    return Message(kind, fields, msg_id)


def _check_kind(kind: str, f: dict[str, Any], msg_id: Any) -> None:
    if kind == "notes":
        for key in ("on", "off"):
            notes = f.get(key, [])
            if len(notes) > MAX_NOTES or any(
                    isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 127 for n in notes):
                raise ProtocolError("bad_field", f"'notes.{key}' must be a list of at most {MAX_NOTES} "
                                    "MIDI note numbers 0-127", msg_id)
    elif kind in ("override", "release"):
        if ("param" in f) == ("group" in f):
            raise ProtocolError("bad_field", f"'{kind}' needs exactly one of 'param' or 'group'", msg_id)
        if kind == "override" and ("param" in f) != (not isinstance(f["value"], str)):
            raise ProtocolError("bad_field", "'override.value' must be a number for a param and a "
                                "string for a state group", msg_id)
    elif kind == "studio.seed" and not 0 <= f["seed"] < 1 << 32:
        raise ProtocolError("bad_field", f"'studio.seed.seed' must be 0-{(1 << 32) - 1}", msg_id)
    elif kind == "studio.record" and f["cmd"] not in ("start", "stop"):
        raise ProtocolError("bad_field", f"'studio.record.cmd' must be start or stop, got {f['cmd']!r}",
                            msg_id)
    elif kind == "transport" and f["cmd"] not in TRANSPORT_CMDS:
        raise ProtocolError("bad_field", f"'transport.cmd' must be one of {', '.join(TRANSPORT_CMDS)}, "
                            f"got {f['cmd']!r}", msg_id)
    elif kind == "prompt":
        if ("text" in f) == ("audio" in f):
            raise ProtocolError("bad_field", "'prompt' needs exactly one of 'text' or 'audio'", msg_id)
        if "audio" in f:
            sr = f.get("sr", 48000)
            if not 8000 <= sr <= 192000:
                raise ProtocolError("bad_field", f"'prompt.sr' must be 8000-192000, got {sr}", msg_id)
            n = len(f["audio"])
            if n % 8 or not MIN_AUDIO_PROMPT_SECONDS * sr * 8 <= n <= MAX_AUDIO_PROMPT_SECONDS * sr * 8:
                raise ProtocolError("bad_field", "'prompt.audio' must be float32 stereo interleaved, "
                                    f"{MIN_AUDIO_PROMPT_SECONDS:g}-{MAX_AUDIO_PROMPT_SECONDS} s", msg_id)
            if not np.isfinite(np.frombuffer(f["audio"], dtype="<f4")).all():
                raise ProtocolError("bad_field", "'prompt.audio' holds NaN or infinite samples", msg_id)
        if not 0 <= f.get("weight", 1.0) <= MAX_STYLE_WEIGHT:
            raise ProtocolError("bad_field", f"'prompt.weight' must be 0-{MAX_STYLE_WEIGHT:g}, "
                                f"got {f['weight']!r}", msg_id)


def ok(msg_id: Any = None, **extra: Any) -> dict[str, Any]:
    return {"type": "ok", "id": msg_id, **extra}


def error(code: str, message: str, msg_id: Any = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "id": msg_id}


def frame(payload: bytes) -> bytes:
    """Framed-TCP encoding: u32 little-endian length, then the msgpack bytes."""
    return LENGTH.pack(len(payload)) + payload


class FrameReader:
    """Splits a TCP byte stream into framed messages. Raises ProtocolError on a length over
    `limit` (checked from the 4-byte header, before any of the frame is held)."""

    def __init__(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self.limit = limit

    @property
    def pending(self) -> int:
        """Bytes held of frames not complete yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out = []
        while len(self._buf) >= 4:
            (n,) = LENGTH.unpack_from(self._buf)
            if n > self.limit:
                raise ProtocolError("too_large", f"frame length {n} exceeds {self.limit}")
            if len(self._buf) < 4 + n:
                break
            out.append(bytes(self._buf[4:4 + n]))
            del self._buf[:4 + n]
        return out


# -- what the server sends (built once per frame, for every transport) -------------------------
def audio_header(seq: int, pos: int, n: int, due: float) -> dict[str, Any]:
    """An audio frame's header: `seq` frame index, `pos` stream position of its first sample
    pair, `n` sample pairs, `due` Unix time it is due to play."""
    return {"type": "audio", "seq": seq, "pos": pos, "sr": SAMPLE_RATE, "ch": CHANNELS, "n": n,
            "due": due}


def marker_message(kind: str, name: str, pos: int, beat: float, bar: int, due: float) -> bytes:
    """A musical marker (beat, bar, transition, stinger) at stream position `pos`."""
    return encode({"type": "marker", "kind": kind, "name": name, "pos": pos, "beat": round(beat, 6),
                   "bar": bar, "due": due})


def status_message(status: dict[str, Any], msg_id: Any = None, **extra: Any) -> dict[str, Any]:
    """The server's status (a reply to `hello`/`status`, and the `tele` telemetry)."""
    return {"type": "status", "id": msg_id, **status, **extra}


def printable(text: Any, limit: int = 120) -> str:
    """Client-supplied text made safe for a log line: control characters (newlines, ANSI
    escapes) shown escaped, long text cut."""
    s = str(text)
    s = "".join(c if c.isprintable() else repr(c)[1:-1] for c in s[:limit])
    return s + ("..." if len(str(text)) > limit else "")


def decode_reply(data: bytes) -> dict[str, Any]:
    """Client side: a server message (reply, audio header, telemetry) as a dict."""
    obj = unpack_output(data)
    if not isinstance(obj, dict):
        raise ProtocolError("bad_message", "expected a map from the server")
    return obj
