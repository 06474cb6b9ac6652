## A small msgpack codec for Scorewright's wire messages (maps, arrays, strings, ints, floats,
## bools, nil, bin). Encodes the way the server's msgpack library does (smallest integer form,
## float64, str8 for short strings) so both produce the same bytes (game_bindings/golden/).
## Written here because Godot has no msgpack and addons should not need native extensions.
class_name ScorewrightMsgPack
extends RefCounted

const MAX_DEPTH := 64


## Encode a Variant: null, bool, int, float, String/StringName, PackedByteArray, Array,
## Dictionary (and other packed arrays, as arrays).
static func encode(value: Variant) -> PackedByteArray:
	var out := PackedByteArray()
	_write(out, value)
	return out


## Decode one message: {"ok": true, "value": ...} or {"ok": false, "error": "what was wrong"}.
static func decode(data: PackedByteArray) -> Dictionary:
	var reader := Reader.new(data)
	var value: Variant = reader.read(0)
	if reader.error == "" and reader.pos != data.size():
		reader.error = "trailing bytes after the value at offset %d" % reader.pos
	if reader.error != "":
		return {"ok": false, "error": reader.error}
	return {"ok": true, "value": value}


static func _write(out: PackedByteArray, value: Variant) -> void:
	match typeof(value):
		TYPE_NIL:
			out.append(0xc0)
		TYPE_BOOL:
			out.append(0xc3 if value else 0xc2)
		TYPE_INT:
			_write_int(out, value)
		TYPE_FLOAT:
			var b := PackedByteArray()
			b.resize(8)
			b.encode_double(0, value)
			out.append(0xcb)
			_append_reversed(out, b)
		TYPE_STRING, TYPE_STRING_NAME:
			var s: PackedByteArray = String(value).to_utf8_buffer()
			if s.size() < 32:
				out.append(0xa0 | s.size())
			else:
				_write_length(out, s.size(), 0xd9, 0xda, 0xdb)
			out.append_array(s)
		TYPE_PACKED_BYTE_ARRAY:
			_write_length(out, value.size(), 0xc4, 0xc5, 0xc6)
			out.append_array(value)
		TYPE_DICTIONARY:
			_write_count(out, value.size(), 0x80, 0xde, 0xdf)
			for key: Variant in value:
				_write(out, key)
				_write(out, value[key])
		TYPE_ARRAY, TYPE_PACKED_INT32_ARRAY, TYPE_PACKED_INT64_ARRAY:
			_write_array(out, value)
		TYPE_PACKED_FLOAT32_ARRAY, TYPE_PACKED_FLOAT64_ARRAY, TYPE_PACKED_STRING_ARRAY:
			_write_array(out, value)
		_:
			push_error("ScorewrightMsgPack: cannot encode a %s" % type_string(typeof(value)))
			out.append(0xc0)


static func _write_array(out: PackedByteArray, items: Variant) -> void:
	_write_count(out, items.size(), 0x90, 0xdc, 0xdd)
	for item: Variant in items:
		_write(out, item)


static func _write_int(out: PackedByteArray, v: int) -> void:
	if v >= 0:
		if v < 0x80:
			out.append(v)
		elif v <= 0xff:
			out.append(0xcc)
			out.append(v)
		elif v <= 0xffff:
			out.append(0xcd)
			_write_be(out, v, 2)
		elif v <= 0xffffffff:
			out.append(0xce)
			_write_be(out, v, 4)
		else:
			out.append(0xcf)
			_write_be(out, v, 8)
	elif v >= -32:
		out.append(v & 0xff)
	elif v >= -128:
		out.append(0xd0)
		_write_be(out, v, 1)
	elif v >= -32768:
		out.append(0xd1)
		_write_be(out, v, 2)
	elif v >= -2147483648:
		out.append(0xd2)
		_write_be(out, v, 4)
	else:
		out.append(0xd3)
		_write_be(out, v, 8)


static func _write_count(out: PackedByteArray, n: int, fix: int, code16: int, code32: int) -> void:
	if n < 16:
		out.append(fix | n)
	else:
		_write_size(out, n, code16, code32)


static func _write_length(
	out: PackedByteArray, n: int, code8: int, code16: int, code32: int
) -> void:
	if n <= 0xff:
		out.append(code8)
		out.append(n)
	else:
		_write_size(out, n, code16, code32)


## The 16- or 32-bit size forms shared by maps, arrays, strings and bin.
static func _write_size(out: PackedByteArray, n: int, code16: int, code32: int) -> void:
	if n <= 0xffff:
		out.append(code16)
		_write_be(out, n, 2)
	else:
		out.append(code32)
		_write_be(out, n, 4)


static func _write_be(out: PackedByteArray, v: int, n: int) -> void:
	for i: int in range(n - 1, -1, -1):
		out.append((v >> (8 * i)) & 0xff)


static func _append_reversed(out: PackedByteArray, b: PackedByteArray) -> void:
	for i: int in range(b.size() - 1, -1, -1):
		out.append(b[i])


## Reads one value at a time; on bad input sets `error` and returns null (never crashes).
class Reader:
	var data: PackedByteArray
	var pos := 0
	var error := ""

	func _init(bytes: PackedByteArray) -> void:
		data = bytes

	func read(depth: int) -> Variant:
		if error != "":
			return null
		if depth > ScorewrightMsgPack.MAX_DEPTH:
			error = "nesting deeper than %d" % ScorewrightMsgPack.MAX_DEPTH
			return null
		if not _has(1):
			return null
		var b: int = data[pos]
		pos += 1
		if b <= 0x7f:
			return b
		if b >= 0xe0:
			return b - 256
		if (b & 0xf0) == 0x80:
			return _map(b & 0x0f, depth)
		if (b & 0xf0) == 0x90:
			return _array(b & 0x0f, depth)
		if (b & 0xe0) == 0xa0:
			return _string(b & 0x1f)
		if b == 0xc0:
			return null
		if b == 0xc2 or b == 0xc3:
			return b == 0xc3
		# families whose length/size field is 1, 2, 4 (or 8) bytes wide, by the code's offset
		if b >= 0xc4 and b <= 0xc6:
			return _bytes(_uint(1 << (b - 0xc4)))
		if b == 0xca or b == 0xcb:
			return _float(4 << (b - 0xca))
		if b >= 0xcc and b <= 0xcf:
			return _uint(1 << (b - 0xcc))
		if b >= 0xd0 and b <= 0xd3:
			return _sint(1 << (b - 0xd0))
		if b >= 0xd9 and b <= 0xdb:
			return _string(_uint(1 << (b - 0xd9)))
		if b == 0xdc or b == 0xdd:
			return _array(_uint(2 << (b - 0xdc)), depth)
		if b == 0xde or b == 0xdf:
			return _map(_uint(2 << (b - 0xde)), depth)
		error = "unsupported msgpack type byte 0x%02x at offset %d" % [b, pos - 1]
		return null

	func _has(n: int) -> bool:
		if n < 0 or pos + n > data.size():
			if error == "":
				error = "truncated message: needed %d bytes at offset %d" % [n, pos]
			return false
		return true

	func _uint(n: int) -> int:
		if not _has(n):
			return 0
		var v := 0
		for i: int in n:
			v = (v << 8) | data[pos + i]
		pos += n
		return v

	func _sint(n: int) -> int:
		var v := _uint(n)
		if n == 8:
			return v  # already two's complement in a 64-bit int
		var bits := 8 * n
		if v >= 1 << (bits - 1):
			v -= 1 << bits
		return v

	func _float(n: int) -> float:
		if not _has(n):
			return 0.0
		var b := PackedByteArray()
		for i: int in range(n - 1, -1, -1):
			b.append(data[pos + i])
		pos += n
		return b.decode_float(0) if n == 4 else b.decode_double(0)

	func _bytes(n: int) -> PackedByteArray:
		if not _has(n):
			return PackedByteArray()
		var out := data.slice(pos, pos + n)
		pos += n
		return out

	func _string(n: int) -> String:
		return _bytes(n).get_string_from_utf8()

	func _array(n: int, depth: int) -> Array:
		var out := []
		if n > data.size() - pos:
			error = "array of %d items cannot fit in the message" % n
			return out
		for i: int in n:
			out.append(read(depth + 1))
		return out

	func _map(n: int, depth: int) -> Dictionary:
		var out := {}
		if n > data.size() - pos:
			error = "map of %d entries cannot fit in the message" % n
			return out
		for i: int in n:
			var key: Variant = read(depth + 1)
			out[key] = read(depth + 1)
		return out
