"""Write game_bindings/golden/msgpack_cases.json: wire messages and the exact msgpack bytes the
server's library (msgpack-python) gives them.

The C# codec (Unity) and the GDScript codec (Godot) must decode each case and re-encode it to the
same bytes; `to_server` cases are also sent verbatim to a live server by the tests. In the JSON,
binary data is written as {"$bin": "<hex>"}.

    python scripts/make_golden_msgpack.py
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import msgpack

BINDINGS = Path(__file__).resolve().parents[1] / "game_bindings"
OUT = BINDINGS / "golden" / "msgpack_cases.json"
GODOT_COPY = BINDINGS / "godot" / "tests" / "msgpack_cases.json"     # res:// cannot reach OUT

TO_SERVER = {
    "hello": {"type": "hello", "id": "hello", "v": 1, "client": "godot", "want_audio": True, "markers": True},
    "set": {"type": "set", "id": 2, "param": "danger", "value": 0.75},
    "set_int_value": {"type": "set", "id": 3, "param": "danger", "value": 1},
    "state": {"type": "state", "id": 4, "group": "area", "value": "cave"},
    "event": {"type": "event", "id": 5, "name": "player_died"},
    "notes": {"type": "notes", "id": 6, "on": [60, 64, 67], "off": []},
    "notes_off": {"type": "notes", "id": 7, "off": [60, 64, 67]},
    "prompt": {"type": "prompt", "id": 8, "text": "warm strings", "weight": 0.5, "name": "mood"},
    "prompt_remove": {"type": "prompt", "id": 9, "text": "warm strings", "weight": 0, "name": "mood"},
    "transport": {"type": "transport", "id": 10, "cmd": "play"},
    "ping": {"type": "ping", "id": 11},
    "status": {"type": "status", "id": 300},
}

PCM = struct.pack("<8f", 0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 0.25, 1e-3)
FROM_SERVER = {
    "ok": {"type": "ok", "id": 2, "frame": 1234, "pos": 2369280, "due": 1764010000.125},
    "error": {"type": "error", "id": 4, "code": "bad_value",
              "message": "state group 'area' has no value 'caves'; expected one of: forest, cave, castle"},
    "marker": {"type": "marker", "kind": "bar", "name": "", "pos": 3840, "beat": 8, "bar": 2,
               "due": 1764010000.5},
    "audio": {"type": "audio", "seq": 7, "pos": 13440, "sr": 48000, "ch": 2, "n": 4, "due": 1.5, "pcm": PCM},
    "status": {"type": "status", "id": "hello", "server": "scorewright", "version": "0.1.0", "map": "demo",
               "map_error": None, "rules": ["combat"], "paused": False, "ring": "/dev/shm/scorewright-x",
               "params": {"danger": 0.25}, "states": {"area": "cave"},
               "weights": {"forest": 0.3, "cave": 0.7},
               "tempo": 96.0, "drums": None, "underruns": 0, "frame": 70000, "lookahead": 3,
               "cost_ms_p99": 2.5, "notes": [], "clients": 2},
    "integers": {"type": "numbers", "values": [0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296,
                                               2**63 - 1, -1, -32, -33, -128, -129, -32768, -32769,
                                               -2147483648, -2147483649, -2**63]},
    "floats": {"type": "numbers", "values": [0.0, -0.0, 1.5, -2.25, 1e300, 5e-324, 48000.0]},
    "strings": {"type": "text", "short": "é", "str8": "x" * 40, "str16": "ü" * 200, "empty": ""},
    "bins": {"type": "bins", "empty": b"", "bin8": bytes(range(200)), "bin16": bytes(300)},
    "containers": {"type": "containers", "array16": list(range(20)),
                   "map16": {f"k{i:02d}": i for i in range(17)}, "nested": [[{"a": [None, True]}]]},
}


def jsonable(value):
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def main() -> None:
    cases = [{"name": name, "direction": direction, "value": jsonable(value),
              "hex": msgpack.packb(value).hex()}
             for direction, group in (("to_server", TO_SERVER), ("from_server", FROM_SERVER))
             for name, value in group.items()]
    about = __doc__.split("\n\n")[0]
    text = json.dumps({"about": about, "cases": cases}, indent=1, ensure_ascii=False) + "\n"
    for path in (OUT, GODOT_COPY):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
