## Headless test of the addon's msgpack codec against the shared golden cases:
##   godot --headless --path game_bindings/godot -s res://tests/test_codec.gd
## Exits 0 when every case decodes and re-encodes to the same bytes, and messages built the way
## ScorewrightMusic builds them match the golden requests.
extends SceneTree

var failures := 0


func _init() -> void:
	var text := FileAccess.get_file_as_string("res://tests/msgpack_cases.json")
	var cases: Array = JSON.parse_string(text)["cases"]
	for c: Dictionary in cases:
		var bytes := _from_hex(c["hex"])
		var decoded := ScorewrightMsgPack.decode(bytes)
		var again := ScorewrightMsgPack.encode(decoded.value).hex_encode() if decoded.ok else ""
		_check(again == c["hex"], "golden %s round-trips byte for byte" % c["name"])
	var built := {"type": "set", "id": 2, "param": "danger", "value": 0.75}
	_check(ScorewrightMsgPack.encode(built).hex_encode() == _hex_of(cases, "set"), "set as built")
	built = {"type": "notes", "id": 6, "on": [60, 64, 67], "off": []}
	_check(
		ScorewrightMsgPack.encode(built).hex_encode() == _hex_of(cases, "notes"), "notes as built"
	)
	for bad: String in ["", "92", "dc0010", "c4ff00", "d9", "c1", "81a17a"]:
		_check(not ScorewrightMsgPack.decode(_from_hex(bad)).ok, "malformed '%s' refused" % bad)
	print("%d failures" % failures)
	quit(1 if failures else 0)


func _check(ok: bool, what: String) -> void:
	print(("ok " if ok else "FAIL ") + what)
	if not ok:
		failures += 1


func _hex_of(cases: Array, name: String) -> String:
	for c: Dictionary in cases:
		if c["name"] == name:
			return c["hex"]
	return ""


func _from_hex(hex: String) -> PackedByteArray:
	var out := PackedByteArray()
	for i: int in range(0, hex.length(), 2):
		out.append(hex.substr(i, 2).hex_to_int())
	return out
