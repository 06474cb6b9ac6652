@tool
@icon("res://addons/scorewright/icon.svg")
class_name ScorewrightMusic
extends Node
## Plays a running Scorewright server's adaptive music and sends it the game's state.
##
## Connects to [code]scorewright serve[/code] over framed TCP ([StreamPeerTCP]), plays its
## 48 kHz stereo stream through an [AudioStreamGenerator] on [member bus], and sends your game's
## state with [method set_param], [method set_state], [method trigger], [method notes],
## [method prompt] and [method transport]. [signal beat], [signal bar] and [signal marker] are
## emitted when the music reaches them [i]at the speakers[/i], so visuals land with the sound.
## [br][br]
## When no server answers, the node plays silence and keeps retrying (every 0.25 s, backing off
## to 1 s); a restarted server is picked up by itself. With [member launch_server] it starts
## [code]scorewright serve[/code] [member map] itself. In the editor, the node shows a warning
## while no server answers on [member host]:[member port].
## [br][br]
## The node keeps running while the scene tree is paused, so the music does not stop with the
## game; send [code]transport("pause")[/code] to fade it out.

## A beat is heard ([param index] counts beats from the start of the stream).
signal beat(index: int)
## A bar is heard ([param index] counts bars from the start of the stream).
signal bar(index: int)
## Any marker is heard: [param kind] is [code]beat[/code], [code]bar[/code],
## [code]transition[/code] or [code]stinger[/code]; [param data] is the server's whole marker.
signal marker(kind: String, name: String, data: Dictionary)
## The server answered [code]hello[/code]; [member status] holds its status.
signal connected
## The connection to the server was lost (the node retries by itself).
signal disconnected
## The server refused something: [param code] (e.g. [code]bad_value[/code]) and a message
## saying what to fix. Also printed as a warning. The music never stops for it.
signal server_error(code: String, message: String)
## The server answered the message that [method send] numbered [param id]; [param reply] is
## [code]{"type": "ok", "frame", "pos", "due"}[/code] (when the change is heard) or an error.
signal replied(id: int, reply: Dictionary)

## Sample rate of the stream (sample pairs per second).
const STREAM_RATE: int = 48000
## Sample pairs in one stream frame (40 ms).
const FRAME: int = 1920
## First retry after the connection fails, in seconds (doubling up to [constant MAX_BACKOFF]).
const MIN_BACKOFF: float = 0.25
## Longest wait between connection attempts, in seconds.
const MAX_BACKOFF: float = 1.0
## Largest message the protocol allows, in bytes.
const MAX_MESSAGE: int = 1048576
## Markers held until heard, at most.
const MAX_MARKERS: int = 1024
## Seconds without a server before [member launch_server] starts one.
const LAUNCH_AFTER: float = 1.0
## Seconds between the editor's checks for a server.
const PROBE_EVERY: float = 2.0
## Largest speed-up or slow-down (0.5 %, below what ears notice) used to keep the queue near
## its target when the sound card's clock drifts from the server's.
const MAX_RATE_CORRECTION: float = 0.005
## Speed change per 40 ms frame that the queue's average is off its target.
const RATE_GAIN: float = 0.005
## Longest mixer period the node plans for, in sample pairs (0.2 s).
const MAX_MIX_BLOCK: int = 9600

@export_group("Server")
## Where [code]scorewright serve[/code] listens (127.0.0.1 unless it runs with --host).
@export var host: String = "127.0.0.1"
## The server's framed-TCP port ([code]--tcp-port[/code], default 7702).
@export_range(1, 65535) var port: int = 7702
## The server's [code]--token[/code], if it was started with [code]--host[/code].
@export var token: String = ""

@export_group("Start a Server")
## Start [code]scorewright serve[/code] [member map] when no server answers within a second
## (desktop, [member host] on this machine). It is stopped when the node leaves the tree.
@export var launch_server: bool = true
## The state map to serve: a bundled map's name ([code]demo[/code]), a [code]res://[/code]
## path or a file path.
@export var map: String = "demo"
## The command that runs Scorewright: [code]scorewright[/code] on the PATH, or a full path
## (e.g. a virtual environment's [code]bin/scorewright[/code]).
@export var scorewright_command: String = "scorewright"
## More arguments for [code]scorewright serve[/code], e.g. [code]["--ring", "mygame"][/code].
@export var server_arguments: PackedStringArray = PackedStringArray()

@export_group("Latency")
## Stream audio held before playback starts, in 40 ms frames; each frame adds 40 ms of
## latency and 40 ms of slack for late packets and slow game frames. The server sends each
## frame 80 ms before it is due, so 2 (the default) plays about on time on one machine (a
## change is heard ~110 ms after it is sent, p95 ~130 ms); 3 for busy machines, 4-5 for Wi-Fi.
@export_range(1, 8) var cushion_frames: int = 2

@export_group("Output")
## The audio bus to play on.
@export var bus: StringName = &"Master":
	set(value):
		bus = value
		if _player != null:
			_player.bus = value
## Volume of the music in decibels.
@export_range(-80.0, 24.0, 0.1, "suffix:dB") var volume_db: float = 0.0:
	set(value):
		volume_db = value
		if _player != null:
			_player.volume_db = value

## The server's last [code]status[/code] (map, tempo, rules, ...); empty until connected.
var status: Dictionary = {}
## Times the stream ran dry while playing (the node then waits for the cushion again).
var underruns: int = 0
## Stream frames that never arrived (the server drops audio for a client that stops reading).
var lost_frames: int = 0
## Stream frames received since the node started.
var frames_received: int = 0

var _peer: StreamPeerTCP = StreamPeerTCP.new()
var _rx: PackedByteArray = PackedByteArray()
var _player: AudioStreamPlayer
var _playback: AudioStreamGeneratorPlayback
var _capacity: int = 0
var _pending: PackedVector2Array = PackedVector2Array()
var _pending_pos: int = 0
var _pushed_end: int = -1
var _queue_avg: float = 0.0
var _queued_after_feed: int = 0
var _mix_samples: Array[int] = []
var _mix_block: int = 0
var _last_pull_usec: int = 0
var _last_pull_at: float = 0.0
var _primed: bool = false
var _skips_seen: int = 0
var _skips: int = 0
var _markers: Array[Dictionary] = []
var _next_id: int = 0
var _was_connected: bool = false
var _answered_once: bool = false
var _backoff: float = MIN_BACKOFF
var _retry_at: float = 0.0
var _last_seq: int = -1
var _launch_at: float = 0.0
var _launched_pid: int = 0
var _probe: StreamPeerTCP = StreamPeerTCP.new()
var _probe_at: float = 0.0
var _probe_answers: bool = true


func _init() -> void:
	process_mode = Node.PROCESS_MODE_ALWAYS


func _ready() -> void:
	if Engine.is_editor_hint():
		return
	var stream := AudioStreamGenerator.new()
	stream.mix_rate = STREAM_RATE
	stream.buffer_length = ((cushion_frames + 4) * FRAME + MAX_MIX_BLOCK) / float(STREAM_RATE)
	_player = AudioStreamPlayer.new()
	_player.stream = stream
	_player.bus = bus
	_player.volume_db = volume_db
	add_child(_player, false, Node.INTERNAL_MODE_BACK)  # not one of the user's children
	_player.play()
	_playback = _player.get_stream_playback()
	_capacity = _playback.get_frames_available()
	_last_pull_at = _now()
	_launch_at = _last_pull_at + LAUNCH_AFTER
	_connect()


func _exit_tree() -> void:
	_peer.disconnect_from_host()
	_probe.disconnect_from_host()
	_stop_launched_server()


func _process(delta: float) -> void:
	if Engine.is_editor_hint():
		_probe_server()
		return
	_poll_network()
	_feed_audio(delta)
	_emit_heard_markers()
	_maybe_launch_server()


func _get_configuration_warnings() -> PackedStringArray:
	if _probe_answers:
		return PackedStringArray()
	var fix := (
		"It will be started when the scene runs (Launch Server)."
		if launch_server and _launch_allowed()
		else "Run `scorewright serve %s --tcp-port %d`." % [map, port]
	)
	return PackedStringArray(
		[
			(
				"No Scorewright server answers on %s:%d. %s The game plays silence until one does."
				% [host, port, fix]
			)
		]
	)


func _validate_property(property: Dictionary) -> void:
	if property.name == "bus":  # offer the project's buses, as AudioStreamPlayer does
		var names := PackedStringArray()
		for i: int in AudioServer.bus_count:
			names.append(AudioServer.get_bus_name(i))
		property.hint = PROPERTY_HINT_ENUM
		property.hint_string = ",".join(names)


# -- game state out ----------------------------------------------------------------------
## A continuous parameter (RTPC), e.g. [code]set_param("danger", 0.7)[/code]; clamped and
## smoothed by the map. Returns the message id, or -1 while disconnected.
func set_param(param: String, value: float) -> int:
	return send("set", {"param": param, "value": value})


## A discrete state, e.g. [code]set_state("area", "cave")[/code]; the value must be one the map
## declares (otherwise [signal server_error] with [code]bad_value[/code]).
func set_state(group: String, value: String) -> int:
	return send("state", {"group": group, "value": value})


## A one-shot event, e.g. [code]trigger("player_died")[/code]; may fire a stinger.
func trigger(event_name: String) -> int:
	return send("event", {"name": event_name})


## MIDI notes 0-127 on and off (at most 128 each), played in time and in key.
func notes(on: Array = [], off: Array = []) -> int:
	return send("notes", {"on": on, "off": off})


## Blend a text style in at [param weight] (0 removes it); name it to change it later.
func prompt(text: String, weight: float = 1.0, prompt_name: String = "") -> int:
	var fields := {"text": text, "weight": weight}
	if prompt_name != "":
		fields["name"] = prompt_name
	return send("prompt", fields)


## [code]"play"[/code], [code]"pause"[/code] (fade to silence) or [code]"stop"[/code] (pause,
## and start from the top on play).
func transport(cmd: String) -> int:
	return send("transport", {"cmd": cmd})


## Send any protocol message ([code]docs/protocol.md[/code]). Returns its id (echoed in
## [signal replied]), or -1 while disconnected: nothing is queued, send again after
## [signal connected].
func send(type: String, fields: Dictionary = {}) -> int:
	if _peer.get_status() != StreamPeerTCP.STATUS_CONNECTED:
		return -1
	_next_id += 1
	var msg := {"type": type, "id": _next_id}
	msg.merge(fields)
	_write(msg)
	return _next_id


## True while a server is connected.
func is_server_connected() -> bool:
	return _was_connected


## True while stream audio is playing (the cushion has filled since the last connect).
func is_playing_stream() -> bool:
	return _primed


## Times the [AudioStreamGenerator] had nothing to play while the stream was playing (silence
## before the cushion fills and while disconnected is not counted).
func get_skips() -> int:
	return _skips


## The stream position (in sample pairs) heard at the speakers now, or -1 before any audio of
## the current connection has played. Compare with a marker's or reply's [code]pos[/code].
## Follows Godot's own recipe for syncing to audio: what the mixer has taken from the
## generator, plus [method AudioServer.get_time_since_last_mix], minus
## [method AudioServer.get_output_latency].
func get_heard_position() -> int:
	if _pushed_end < 0 or _playback == null:
		return -1
	var mixed := _pushed_end - (_capacity - _playback.get_frames_available())
	var since_mix := AudioServer.get_time_since_last_mix() * _player.pitch_scale
	var heard := mixed + int((since_mix - AudioServer.get_output_latency()) * STREAM_RATE)
	return mini(heard, _pushed_end)


## Seconds from now until stream position [param pos] is heard (negative: already heard);
## [constant @GDScript.INF] before any audio has played.
func seconds_until_heard(pos: int) -> float:
	var heard := get_heard_position()
	if heard < 0:
		return INF
	return (pos - heard) / float(STREAM_RATE) / _player.pitch_scale


func _write(msg: Dictionary) -> void:
	var payload := ScorewrightMsgPack.encode(msg)
	var header := PackedByteArray()
	header.resize(4)
	header.encode_u32(0, payload.size())
	_peer.put_data(header + payload)


func _now() -> float:
	return Time.get_ticks_msec() / 1000.0


# -- connection ----------------------------------------------------------------------------
func _connect() -> void:
	_peer.disconnect_from_host()  # a peer in the error state must be reset before reuse
	_rx.clear()
	_pending.clear()
	_markers.clear()
	_primed = false
	_pushed_end = -1
	_last_seq = -1
	if _peer.connect_to_host(host, port) != OK:
		_schedule_retry()


func _schedule_retry() -> void:
	_retry_at = _now() + _backoff
	_backoff = minf(_backoff * 2.0, MAX_BACKOFF)


func _poll_network() -> void:
	_peer.poll()
	match _peer.get_status():
		StreamPeerTCP.STATUS_CONNECTED:
			if not _was_connected:
				_on_connected()
			_read_messages()
		StreamPeerTCP.STATUS_CONNECTING:
			pass
		_:
			if _was_connected:
				_on_disconnected()
			if _retry_at == 0.0:
				_schedule_retry()
			elif _now() >= _retry_at:
				_retry_at = 0.0
				_connect()


func _on_connected() -> void:
	_was_connected = true
	_answered_once = true
	_backoff = MIN_BACKOFF
	var hello := {"type": "hello", "id": "hello", "v": 1, "client": "godot"}
	hello.merge({"want_audio": true, "markers": true})
	if token != "":
		hello["token"] = token
	_write(hello)


func _on_disconnected() -> void:
	_was_connected = false
	_primed = false  # what is queued plays out; the silence after it is not an underrun
	disconnected.emit()


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
			_handle(decoded.value)
		else:
			push_warning("Scorewright: undecodable message skipped (%s)" % decoded.get("error"))
	if start > 0:
		_rx = _rx.slice(start)


func _handle(msg: Dictionary) -> void:
	var id: Variant = msg.get("id")
	match msg.get("type", ""):
		"audio":
			_on_audio(msg)
		"marker":
			if _markers.size() < MAX_MARKERS:
				_markers.append(msg)
		"status":
			status = msg
			if id == "hello":
				connected.emit()
		"error":
			var code := str(msg.get("code", ""))
			push_warning("Scorewright: %s: %s" % [code, msg.get("message", "")])
			server_error.emit(code, str(msg.get("message", "")))
	if id is int:
		replied.emit(id, msg)


# -- audio ---------------------------------------------------------------------------------
func _on_audio(msg: Dictionary) -> void:
	var pcm: Variant = msg.get("pcm")
	if not pcm is PackedByteArray:
		push_warning("Scorewright: an audio message without pcm was skipped")
		return
	frames_received += 1
	var seq := int(msg.get("seq", 0))
	if _last_seq >= 0 and seq > _last_seq + 1:
		lost_frames += seq - _last_seq - 1
	_last_seq = seq
	if _pending.is_empty():
		_pending_pos = int(msg.get("pos", 0))
	_pending.append_array(_stereo(pcm))


static func _stereo(pcm: PackedByteArray) -> PackedVector2Array:
	var samples := pcm.to_float32_array()
	var frames := PackedVector2Array()
	frames.resize(samples.size() / 2)
	for i: int in frames.size():
		frames[i] = Vector2(samples[2 * i], samples[2 * i + 1])
	return frames


func _feed_audio(delta: float) -> void:
	if _playback == null:
		return
	var queued := _capacity - _playback.get_frames_available()
	var skips := _playback.get_skips()
	var pulled := skips != _skips_seen  # the mixer wanted more than the generator held
	_observe_mixing(queued, pulled)
	if _primed and pulled:  # ran dry while the stream played: wait for the cushion again
		_skips += skips - _skips_seen
		underruns += 1
		_primed = false
	_skips_seen = skips
	if not _primed:
		_queued_after_feed = queued
		if not _cushion_filled(queued, pulled):
			return
		_drop_oldest(_pending.size() - cushion_frames * FRAME)  # more is only delay
		_primed = true
		_queue_avg = _target_level()
	var n := mini(_pending.size(), _capacity - queued)
	if n > 0:
		_playback.push_buffer(_pending.slice(0, n))
		_pending = _pending.slice(n)
		_pending_pos += n
		_pushed_end = _pending_pos
	_queued_after_feed = queued + n
	_correct_rate(queued + n + _pending.size(), delta)


## Playback (re)starts with the cushion right after the mixer pulled from the empty generator:
## the audio arriving before its next pull adds to the cushion, so the mixer's period (10-25 ms
## with a sound card, 85-93 ms with the Dummy driver) costs no extra latency up front.
func _cushion_filled(queued: int, pulled: bool) -> bool:
	if _pending.size() < cushion_frames * FRAME:
		return false
	if pulled and queued == 0:
		return true
	return _now() - _last_pull_at > 0.25  # a mixer that does not pull: start anyway


## The queue's average while playing: the cushion plus half of what the mixer takes at once.
func _target_level() -> float:
	return cushion_frames * FRAME + _mix_block / 2.0


## Measures what the mixer takes at once: between two feeds while playing, or from the time
## between two pulls while the generator is empty.
func _observe_mixing(queued: int, pulled: bool) -> void:
	if pulled or queued < _queued_after_feed:
		_last_pull_at = _now()
	var now := Time.get_ticks_usec()
	if queued > 0:  # only pulls from an empty generator time the mixer
		_last_pull_usec = 0
	if pulled and queued == 0:
		if _last_pull_usec > 0:
			_note_mix_block(int((now - _last_pull_usec) * STREAM_RATE / 1000000))
		_last_pull_usec = now
	elif _primed and queued < _queued_after_feed:
		_note_mix_block(_queued_after_feed - queued)


func _note_mix_block(samples: int) -> void:
	_mix_samples.append(mini(samples, MAX_MIX_BLOCK))  # a long hitch is not the mixer's period
	if _mix_samples.size() > 32:
		_mix_samples.remove_at(0)
	_mix_block = _mix_samples.max()


## Keeps the audio queued in Godot near its target: the sound card's clock drifts slightly
## from the server's (0.1-0.3 % for the Dummy driver), so play up to 0.5 % faster or slower
## in proportion to how far the queue's average is off; past 4 frames over, drop the oldest.
func _correct_rate(queued: int, delta: float) -> void:
	_queue_avg += (queued - _queue_avg) * minf(delta / 2.0, 1.0)
	var off := (_queue_avg - _target_level()) / FRAME
	_player.pitch_scale = 1.0 + clampf(off * RATE_GAIN, -MAX_RATE_CORRECTION, MAX_RATE_CORRECTION)
	if queued > _target_level() + 4 * FRAME:
		_drop_oldest(queued - int(_target_level()))


func _drop_oldest(samples: int) -> void:
	var n := mini(samples, _pending.size())
	if n > 0:
		_pending = _pending.slice(n)
		_pending_pos += n


func _emit_heard_markers() -> void:
	if _markers.is_empty():
		return
	var heard := get_heard_position()
	if heard < 0:
		return
	var keep: Array[Dictionary] = []
	for m: Dictionary in _markers:
		if int(m.get("pos", 0)) > heard:
			keep.append(m)
			continue
		var kind := str(m.get("kind", ""))
		if kind == "beat":
			beat.emit(int(m.get("beat", 0)))
		elif kind == "bar":
			bar.emit(int(m.get("bar", 0)))
		marker.emit(kind, str(m.get("name", "")), m)
	_markers = keep


# -- starting a server ---------------------------------------------------------------------
func _launch_allowed() -> bool:
	return OS.has_feature("pc") and host in ["127.0.0.1", "localhost", "::1"]


func _maybe_launch_server() -> void:
	if not launch_server or _launched_pid != 0 or _answered_once or _now() < _launch_at:
		return
	_launched_pid = -1  # one try per node
	if not _launch_allowed():
		return
	var command := _find_command(scorewright_command)
	if command == "":
		var missing := (
			"no server on %s:%d and `%s` was not found" % [host, port, scorewright_command]
		)
		var fix := "install Scorewright, set Scorewright Command to its full path, or run "
		fix += "`scorewright serve %s` yourself" % map
		push_warning("Scorewright: %s: %s. The game runs on without music." % [missing, fix])
		return
	var args := PackedStringArray(["serve", _map_argument(), "--tcp-port", str(port)])
	args.append_array(server_arguments)
	_launched_pid = OS.create_process(command, args)
	if _launched_pid <= 0:
		push_warning("Scorewright: could not start `%s %s`" % [command, " ".join(args)])
	else:
		print("Scorewright: started `%s %s` (pid %d)" % [command, " ".join(args), _launched_pid])


func _map_argument() -> String:
	if map.begins_with("res://") or map.begins_with("user://"):
		return ProjectSettings.globalize_path(map)
	if map.is_relative_path() and FileAccess.file_exists("res://" + map):
		return ProjectSettings.globalize_path("res://" + map)
	return map


static func _find_command(command: String) -> String:
	if command.is_absolute_path() or command.contains("/"):
		return command if FileAccess.file_exists(command) else ""
	var windows := OS.get_name() == "Windows"
	var separator := ";" if windows else ":"
	for folder: String in OS.get_environment("PATH").split(separator, false):
		for suffix: String in [".exe", ".cmd", ""] if windows else [""]:
			var path := folder.path_join(command + suffix)
			if FileAccess.file_exists(path):
				return path
	return ""


func _stop_launched_server() -> void:
	if _launched_pid <= 0 or not OS.is_process_running(_launched_pid):
		return
	if OS.get_name() == "Windows":
		OS.kill(_launched_pid)
	else:  # SIGTERM: the server removes its shared-memory ring and exits cleanly
		OS.execute("kill", PackedStringArray(["-TERM", str(_launched_pid)]))
	_launched_pid = -1


# -- editor --------------------------------------------------------------------------------
## In the editor: try a TCP connection to the server every 2 s and update the node's warning.
func _probe_server() -> void:
	_probe.poll()
	var state := _probe.get_status()
	if state == StreamPeerTCP.STATUS_CONNECTED or state == StreamPeerTCP.STATUS_ERROR:
		_set_probe_answers(state == StreamPeerTCP.STATUS_CONNECTED)
		_probe.disconnect_from_host()
	elif _now() >= _probe_at:
		_probe.disconnect_from_host()  # a connection attempt still pending counts as no answer
		if state == StreamPeerTCP.STATUS_CONNECTING:
			_set_probe_answers(false)
		_probe_at = _now() + PROBE_EVERY
		if _probe.connect_to_host(host, port) != OK:
			_set_probe_answers(false)


func _set_probe_answers(answers: bool) -> void:
	if answers != _probe_answers:
		_probe_answers = answers
		update_configuration_warnings()
