## Plays a running Scorewright server's music and sends it the game's state, over framed TCP.
## Add it to a scene (it creates its own AudioStreamPlayer), set host/port, call set_param,
## set_state, trigger, notes and prompt; connect to `beat` and `bar` (emitted when heard).
class_name ScorewrightMusic
extends Node

## A beat is heard (index counts from the start of the stream).
signal beat(index: int)
## A bar is heard.
signal bar(index: int)
## Any marker is heard: kind is beat, bar, transition or stinger.
signal marker(kind: String, name: String, data: Dictionary)
## The server answered hello (`status` holds its status).
signal connected
signal disconnected
## The server refused something (code, and a message saying what to fix).
signal server_error(code: String, message: String)

const STREAM_RATE := 48000
const FRAME := 1920
const MIN_BACKOFF := 0.25
const MAX_BACKOFF := 5.0

## Where `scorewright serve` listens (its --tcp-port, default 7702).
@export var host := "127.0.0.1"
@export var port := 7702
## The server's --token, if it was started with --host.
@export var token := ""
## Stream audio held before playback starts, in 40 ms frames (2 plays on time; 3-4 for Wi-Fi).
@export_range(1, 8) var cushion_frames := 3
## The AudioStreamGenerator's buffer in seconds (Godot's own latency on top of the cushion).
@export_range(0.05, 0.5) var generator_buffer := 0.1
## The audio bus to play on.
@export var bus := &"Master"

var status: Dictionary = {}
var underruns := 0
var lost_frames := 0

var _peer := StreamPeerTCP.new()
var _rx := PackedByteArray()
var _player: AudioStreamPlayer
var _playback: AudioStreamGeneratorPlayback
var _pending := PackedVector2Array()
var _primed := false
var _markers: Array[Dictionary] = []
var _next_id := 0
var _was_connected := false
var _backoff := MIN_BACKOFF
var _retry_at := 0.0
var _last_seq := -1
var _skips_seen := 0


func _ready() -> void:
	var stream := AudioStreamGenerator.new()
	stream.mix_rate = STREAM_RATE
	stream.buffer_length = generator_buffer
	_player = AudioStreamPlayer.new()
	_player.stream = stream
	_player.bus = bus
	add_child(_player)
	_player.play()
	_playback = _player.get_stream_playback()
	_connect()


func _exit_tree() -> void:
	_peer.disconnect_from_host()


func _process(_delta: float) -> void:
	_poll_network()
	_feed_audio()
	_emit_due_markers()


# -- game state out ----------------------------------------------------------------------
## A continuous parameter (RTPC), e.g. set_param("danger", 0.7).
func set_param(param: String, value: float) -> int:
	return send("set", {"param": param, "value": value})


## A discrete state, e.g. set_state("area", "cave").
func set_state(group: String, value: String) -> int:
	return send("state", {"group": group, "value": value})


## A one-shot event (may fire a stinger), e.g. trigger("player_died").
func trigger(event_name: String) -> int:
	return send("event", {"name": event_name})


## MIDI notes 0-127 on and off.
func notes(on: Array = [], off: Array = []) -> int:
	return send("notes", {"on": on, "off": off})


## Blend a text style in at `weight` (0 removes it).
func prompt(text: String, weight: float = 1.0, prompt_name: String = "") -> int:
	var fields := {"text": text, "weight": weight}
	if prompt_name != "":
		fields["name"] = prompt_name
	return send("prompt", fields)


## "play", "pause" (fade to silence) or "stop".
func transport(cmd: String) -> int:
	return send("transport", {"cmd": cmd})


func is_server_connected() -> bool:
	return _was_connected


## Send a message; returns its id (echoed in the reply), or -1 while disconnected.
func send(type: String, fields: Dictionary = {}) -> int:
	if _peer.get_status() != StreamPeerTCP.STATUS_CONNECTED:
		return -1
	_next_id += 1
	var msg := {"type": type, "id": _next_id}
	msg.merge(fields)
	_write(msg)
	return _next_id


func _write(msg: Dictionary) -> void:
	var payload := ScorewrightMsgPack.encode(msg)
	var header := PackedByteArray()
	header.resize(4)
	header.encode_u32(0, payload.size())
	_peer.put_data(header + payload)


# -- connection ----------------------------------------------------------------------------
func _connect() -> void:
	_peer.disconnect_from_host()  # a peer in the error state must be reset before reuse
	_rx.clear()
	_pending.clear()
	_primed = false
	_last_seq = -1
	var err := _peer.connect_to_host(host, port)
	if err != OK:
		_schedule_retry()


func _schedule_retry() -> void:
	_retry_at = Time.get_ticks_msec() / 1000.0 + _backoff
	_backoff = min(_backoff * 2.0, MAX_BACKOFF)


func _poll_network() -> void:
	_peer.poll()
	match _peer.get_status():
		StreamPeerTCP.STATUS_CONNECTED:
			if not _was_connected:
				_was_connected = true
				_backoff = MIN_BACKOFF
				var hello := {"type": "hello", "id": "hello", "v": 1, "client": "godot"}
				hello.merge({"want_audio": true, "markers": true})
				if token != "":
					hello["token"] = token
				_write(hello)
			_read_messages()
		StreamPeerTCP.STATUS_CONNECTING:
			pass
		_:
			if _was_connected:
				_was_connected = false
				disconnected.emit()
				_schedule_retry()
			if _retry_at > 0.0 and Time.get_ticks_msec() / 1000.0 >= _retry_at:
				_retry_at = 0.0
				_connect()
			elif _retry_at == 0.0:
				_schedule_retry()


func _read_messages() -> void:
	var available := _peer.get_available_bytes()
	if available > 0:
		var got: Array = _peer.get_data(available)
		if got[0] == OK:
			_rx.append_array(got[1])
	while _rx.size() >= 4:
		var n := _rx.decode_u32(0)
		if n > 1048576:
			push_warning("Scorewright: the server sent a %d-byte frame; reconnecting" % n)
			_peer.disconnect_from_host()
			return
		if _rx.size() < 4 + n:
			return
		var decoded := ScorewrightMsgPack.decode(_rx.slice(4, 4 + n))
		_rx = _rx.slice(4 + n)
		if decoded.ok and decoded.value is Dictionary:
			_handle(decoded.value)
		else:
			push_warning("Scorewright: undecodable message skipped (%s)" % decoded.get("error"))


func _handle(msg: Dictionary) -> void:
	match msg.get("type", ""):
		"audio":
			_on_audio(msg)
		"marker":
			if _markers.size() < 1024:
				_markers.append(msg)
		"status":
			status = msg
			if msg.get("id") == "hello":
				connected.emit()
		"error":
			push_warning("Scorewright: %s: %s" % [msg.get("code", ""), msg.get("message", "")])
			server_error.emit(str(msg.get("code", "")), str(msg.get("message", "")))


# -- audio ---------------------------------------------------------------------------------
func _on_audio(msg: Dictionary) -> void:
	var seq: int = msg.get("seq", 0)
	if _last_seq >= 0 and seq > _last_seq + 1:
		lost_frames += seq - _last_seq - 1
	_last_seq = seq
	var samples: PackedFloat32Array = (
		(msg.get("pcm", PackedByteArray()) as PackedByteArray).to_float32_array()
	)
	var frames := PackedVector2Array()
	frames.resize(samples.size() / 2)
	for i in frames.size():
		frames[i] = Vector2(samples[2 * i], samples[2 * i + 1])
	_pending.append_array(frames)
	# the sound card's clock runs slightly off the server's: never let the backlog grow past
	# the cushion by more than 4 frames (drop the oldest audio instead)
	var limit := (cushion_frames + 4) * FRAME
	if _pending.size() > limit:
		_pending = _pending.slice(_pending.size() - cushion_frames * FRAME)


func _feed_audio() -> void:
	if _playback == null:
		return
	if not _primed:
		if _pending.size() < cushion_frames * FRAME:
			return
		_primed = true
		_skips_seen = _playback.get_skips()  # silence before playback is not an underrun
	var room := _playback.get_frames_available()
	var n := mini(room, _pending.size())
	if n > 0:
		_playback.push_buffer(_pending.slice(0, n))
		_pending = _pending.slice(n)
	var skips := _playback.get_skips()
	if skips > _skips_seen:  # the generator ran dry: count it, wait for the cushion again
		underruns += 1
		_skips_seen = skips
		_primed = false


func _emit_due_markers() -> void:
	if _markers.is_empty():
		return
	var heard_at := Time.get_unix_time_from_system() - AudioServer.get_output_latency()
	var keep: Array[Dictionary] = []
	for m in _markers:
		if float(m.get("due", 0.0)) > heard_at:
			keep.append(m)
			continue
		var kind := str(m.get("kind", ""))
		if kind == "beat":
			beat.emit(int(m.get("beat", 0)))
		elif kind == "bar":
			bar.emit(int(m.get("bar", 0)))
		marker.emit(kind, str(m.get("name", "")), m)
	_markers = keep
