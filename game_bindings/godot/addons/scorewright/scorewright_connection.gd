class_name ScorewrightConnection
extends RefCounted
## The framed-TCP link to a Scorewright server, used by [ScorewrightMusic].
##
## Messages are msgpack maps, each framed by its length (u32, little-endian). On connecting it
## says [code]hello[/code] (audio and markers wanted, the token if any); when the connection
## fails or drops it retries by itself (0.25 s, doubling to 1 s). Call [method poll] once a
## frame: it emits [signal opened], [signal message] and [signal closed].

## The server accepted the TCP connection (and [code]hello[/code] was sent).
signal opened
## A message from the server (decoded).
signal message(msg: Dictionary)
## The connection was lost (it is retried by itself).
signal closed

## First retry after the connection fails, in seconds (doubling up to [constant MAX_BACKOFF]).
const MIN_BACKOFF: float = 0.25
## Longest wait between connection attempts, in seconds.
const MAX_BACKOFF: float = 1.0
## Largest message the protocol allows, in bytes.
const MAX_MESSAGE: int = 1048576

## Where the server listens, and its [code]--token[/code] (empty: none).
var host: String = "127.0.0.1"
## The server's framed-TCP port.
var port: int = 7702
## Sent in [code]hello[/code] when not empty.
var token: String = ""
## True from [signal opened] to [signal closed].
var is_open: bool = false
## True once any server has answered since this object was made.
var answered_once: bool = false
## Longest wait between attempts now (lowered while a server it started is coming up).
var max_backoff: float = MAX_BACKOFF

var _peer: StreamPeerTCP = StreamPeerTCP.new()
var _rx: PackedByteArray = PackedByteArray()
var _next_id: int = 0
var _backoff: float = MIN_BACKOFF
var _retry_at: float = 0.0


## (Re)connect to [param to_host]:[param to_port]; any current connection is dropped.
func open(to_host: String, to_port: int, with_token: String) -> void:
	host = to_host
	port = to_port
	token = with_token
	_peer.disconnect_from_host()  # a peer in the error state must be reset before reuse
	_rx.clear()
	_retry_at = 0.0
	if is_open:
		is_open = false
		closed.emit()
	if _peer.connect_to_host(host, port) != OK:
		_schedule_retry()


## Drop the connection (no retry until [method open]).
func close() -> void:
	_peer.disconnect_from_host()
	_retry_at = INF


## Read what arrived, notice connects and drops, retry when due.
func poll() -> void:
	_peer.poll()
	match _peer.get_status():
		StreamPeerTCP.STATUS_CONNECTED:
			if not is_open:
				_on_opened()
			_read_messages()
		StreamPeerTCP.STATUS_CONNECTING:
			pass
		_:
			if is_open:
				is_open = false
				closed.emit()
			if _retry_at == 0.0:
				_schedule_retry()
			elif _now() >= _retry_at:
				_retry_at = 0.0
				open(host, port, token)


## Send a protocol message; returns its id, or -1 while not connected (nothing is queued).
func send(type: String, fields: Dictionary = {}) -> int:
	if _peer.get_status() != StreamPeerTCP.STATUS_CONNECTED:
		return -1
	_next_id += 1
	var msg := {"type": type, "id": _next_id}
	msg.merge(fields)
	_write(msg)
	return _next_id


## [param msg] as it goes on the wire: msgpack, after its length (u32, little-endian).
static func framed(msg: Dictionary) -> PackedByteArray:
	var payload := ScorewrightMsgPack.encode(msg)
	var header := PackedByteArray()
	header.resize(4)
	header.encode_u32(0, payload.size())
	return header + payload


func _write(msg: Dictionary) -> void:
	_peer.put_data(framed(msg))


func _schedule_retry() -> void:
	_retry_at = _now() + minf(_backoff, max_backoff)
	_backoff = minf(_backoff * 2.0, MAX_BACKOFF)


func _on_opened() -> void:
	is_open = true
	answered_once = true
	_backoff = MIN_BACKOFF
	var hello := {"type": "hello", "id": "hello", "v": 1, "client": "godot"}
	hello.merge({"want_audio": true, "markers": true})
	if token != "":
		hello["token"] = token
	_write(hello)
	opened.emit()


func _read_messages() -> void:
	var available := _peer.get_available_bytes()
	if available > 0:
		var got: Array = _peer.get_data(available)
		if got[0] == OK:
			_rx.append_array(got[1])
	var start := 0
	while _rx.size() - start >= 4:
		var n := _rx.decode_u32(start)
		if n > MAX_MESSAGE:
			push_warning("Scorewright: the server sent a %d-byte message; reconnecting" % n)
			_peer.disconnect_from_host()
			return
		if _rx.size() - start < 4 + n:
			break
		var decoded := ScorewrightMsgPack.decode(_rx.slice(start + 4, start + 4 + n))
		start += 4 + n
		if decoded.ok and decoded.value is Dictionary:
			message.emit(decoded.value)
		else:
			push_warning("Scorewright: undecodable message skipped (%s)" % decoded.get("error"))
	if start > 0:
		_rx = _rx.slice(start)


static func _now() -> float:
	return Time.get_ticks_msec() / 1000.0
