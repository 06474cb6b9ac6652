@tool
@icon("res://addons/scorewright/icon.svg")
class_name ScorewrightMusic
extends Node
## Plays a Scorewright server's adaptive music and sends it the game's state.
##
## Connects to a Scorewright server over framed TCP ([ScorewrightConnection]), plays its
## 48 kHz stereo stream through an [AudioStreamGenerator] on [member bus]
## ([ScorewrightStream]), and sends your game's state with [method set_param],
## [method set_state], [method trigger], [method notes], [method prompt] and
## [method transport]. [signal beat], [signal bar] and [signal marker] are emitted when the
## music reaches them [i]at the speakers[/i], so visuals land with the sound.
## [br][br]
## With [member launch_server] the node starts the game's own server ([ScorewrightLauncher]):
## the one the game ships in [member server_folder] (built by [code]scorewright bundle[/code]),
## at once; otherwise (in the editor) [code]scorewright serve[/code] [member map] when no server
## answers on [member host]:[member port] within a second. It stops that server when the node
## leaves the tree, and the server stops by itself if the game dies.
## [br][br]
## When no server answers, the node plays silence and keeps retrying (every 0.25 s, backing off
## to 1 s); a restarted server is picked up by itself. In the editor, the node shows a warning
## while no server answers on [member host]:[member port]. The node keeps running while the
## scene tree is paused; send [code]transport("pause")[/code] to fade the music out.

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
const STREAM_RATE: int = ScorewrightStream.STREAM_RATE
## Sample pairs in one stream frame (40 ms).
const FRAME: int = ScorewrightStream.FRAME
## Seconds without a server before [member launch_server] runs [member scorewright_command]
## (a server the game ships is started at once).
const LAUNCH_AFTER: float = 1.0
## Server starts tried per node (again when the one started exits on its own).
const MAX_LAUNCHES: int = 3
## Seconds between the editor's checks for a server.
const PROBE_EVERY: float = 2.0

@export_group("Server")
## Where a running Scorewright server listens (127.0.0.1 unless it runs with --host).
@export var host: String = "127.0.0.1"
## The server's framed-TCP port ([code]--tcp-port[/code], default 7702).
@export_range(1, 65535) var port: int = 7702
## The server's [code]--token[/code], if it was started with [code]--host[/code].
@export var token: String = ""

@export_group("Start a Server")
## Start the game's own server (desktop platforms): the one in [member server_folder] at once,
## else [member scorewright_command] when no server answers within a second. It gets free
## ports, a ring name and a token of its own, and is stopped when the node leaves the tree.
@export var launch_server: bool = true
## The state map to serve: a bundled map's name ([code]demo[/code]), a [code]res://[/code]
## path or a file path. A server the game ships finds it by file name in its [code]maps/[/code]
## ([code]scorewright bundle --map[/code]).
@export var map: String = "demo"
## The folder of the server the game ships ([code]scorewright bundle --out[/code]): relative
## to the exported game's executable ([code]scorewright[/code]: next to it), or absolute.
@export var server_folder: String = "scorewright"
## The command run when [member server_folder] holds no server (in the editor):
## [code]scorewright[/code] on the PATH, or a full path (a virtual environment's
## [code]bin/scorewright[/code]).
@export var scorewright_command: String = "scorewright"
## More arguments for [code]serve[/code], e.g. [code]["--web-port", "7710"][/code] to open the
## studio page of the game's server.
@export var server_arguments: PackedStringArray = PackedStringArray()

@export_group("Latency")
## Stream audio held before playback starts, in 40 ms frames; each frame adds 40 ms of
## latency and 40 ms of slack for late packets and slow game frames. The server sends each
## frame 80 ms before it is due, so 2 (the default) plays about on time on one machine (a
## change is heard ~114 ms after it is sent, p95 ~132 ms: bench/bench_godot.py); 3 for busy
## machines, 4-5 for Wi-Fi.
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
var underruns: int:
	get:
		return _stream.underruns
## Stream frames that never arrived (the server drops audio for a client that stops reading).
var lost_frames: int:
	get:
		return _stream.lost_frames
## Stream frames received since the node started.
var frames_received: int:
	get:
		return _stream.frames_received

var _conn: ScorewrightConnection = ScorewrightConnection.new()
var _stream: ScorewrightStream = ScorewrightStream.new()
var _launcher: ScorewrightLauncher = ScorewrightLauncher.new()
var _player: AudioStreamPlayer
var _launch_at: float = 0.0
var _launches: int = 0
var _probe: StreamPeerTCP = StreamPeerTCP.new()
var _probe_at: float = 0.0
var _probe_answers: bool = true


func _init() -> void:
	process_mode = Node.PROCESS_MODE_ALWAYS


func _ready() -> void:
	if Engine.is_editor_hint():
		return
	_player = AudioStreamPlayer.new()
	_player.stream = ScorewrightStream.make_generator(cushion_frames)  # an AudioStreamGenerator
	_player.bus = bus
	_player.volume_db = volume_db
	add_child(_player, false, Node.INTERNAL_MODE_BACK)  # not one of the user's children
	_player.play()
	_stream.cushion_frames = cushion_frames
	_stream.attach(_player)
	_conn.opened.connect(_on_opened)
	_conn.closed.connect(_on_closed)
	_conn.message.connect(_handle)
	_launch_at = Time.get_ticks_msec() / 1000.0 + LAUNCH_AFTER
	if (
		launch_server
		and _launch_allowed()
		and ScorewrightLauncher.find_bundled(server_folder) != ""
	):
		_launch()  # the game ships its server: start it now
	else:
		_conn.open(host, port, token)


func _exit_tree() -> void:
	_conn.close()
	_probe.disconnect_from_host()
	_launcher.stop()


func _process(delta: float) -> void:
	if Engine.is_editor_hint():
		_probe_server()
		return
	_conn.poll()
	_stream.feed(delta)
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
	return _conn.send(type, fields)


## True while a server is connected.
func is_server_connected() -> bool:
	return _conn.is_open


## True while stream audio is playing (the cushion has filled since the last connect).
func is_playing_stream() -> bool:
	return _stream.primed


## Times the [AudioStreamGenerator] had nothing to play while the stream was playing (silence
## before the cushion fills and while disconnected is not counted).
func get_skips() -> int:
	return _stream.skips


## The process id of the server this node started ([member launch_server]), or 0.
func get_server_pid() -> int:
	return _launcher.pid


## The stream position (in sample pairs) heard at the speakers now, or -1 before any audio of
## the current connection has played. Compare with a marker's or reply's [code]pos[/code].
## Follows Godot's own recipe for syncing to audio: what the mixer has taken from the
## generator, plus [method AudioServer.get_time_since_last_mix], minus
## [method AudioServer.get_output_latency].
func get_heard_position() -> int:
	return _stream.heard_position()


## Seconds from now until stream position [param pos] is heard (negative: already heard);
## [constant @GDScript.INF] before any audio has played.
func seconds_until_heard(pos: int) -> float:
	return _stream.seconds_until_heard(pos)


# -- messages in ---------------------------------------------------------------------------
func _on_opened() -> void:
	_stream.reset()
	_conn.max_backoff = ScorewrightConnection.MAX_BACKOFF


func _on_closed() -> void:
	_stream.reset()  # what the generator holds plays out; the silence after it is no underrun
	disconnected.emit()


func _handle(msg: Dictionary) -> void:
	var id: Variant = msg.get("id")
	match msg.get("type", ""):
		"audio":
			_stream.add_audio(msg)
		"marker":
			_stream.add_marker(msg)
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


func _emit_heard_markers() -> void:
	for m: Dictionary in _stream.take_heard_markers():
		var kind := str(m.get("kind", ""))
		if kind == "beat":
			beat.emit(int(m.get("beat", 0)))
		elif kind == "bar":
			bar.emit(int(m.get("bar", 0)))
		marker.emit(kind, str(m.get("name", "")), m)


# -- starting a server ---------------------------------------------------------------------
func _launch_allowed() -> bool:
	return OS.has_feature("pc") and host in ["127.0.0.1", "localhost", "::1"]


func _maybe_launch_server() -> void:
	if not launch_server or _launches >= MAX_LAUNCHES or not _launch_allowed():
		return
	if _launcher.pid != 0:
		if _launcher.is_running():
			return
		push_warning("Scorewright: its server %s; starting it again" % _launcher.exit_description())
	elif _conn.answered_once or Time.get_ticks_msec() / 1000.0 < _launch_at:
		return
	_launch()


func _launch() -> void:
	_launches += 1
	var bundled := ScorewrightLauncher.find_bundled(server_folder)
	var command := (
		bundled if bundled != "" else ScorewrightLauncher.find_command(scorewright_command)
	)
	if command == "":
		_launches = MAX_LAUNCHES
		var missing := (
			"no server on %s:%d, none in '%s' and `%s` was not found"
			% [host, port, server_folder, scorewright_command]
		)
		var fix := "ship one (scorewright bundle), set Scorewright Command to its full path, or "
		fix += "run `scorewright serve %s` yourself" % map
		push_warning("Scorewright: %s: %s. The game runs on without music." % [missing, fix])
		return
	if not _launcher.start(command, _map_argument(bundled != ""), server_arguments):
		push_warning("Scorewright: cannot run `%s`: %s" % [_launcher.describe(), _launcher.problem])
		_conn.open(host, port, token)
		return
	print("Scorewright: started `%s` (pid %d)" % [_launcher.describe(), _launcher.pid])
	_conn.max_backoff = 0.1  # it listens within a second or so: look often until then
	_conn.open("127.0.0.1", _launcher.port, _launcher.token)


## The map for [code]serve[/code]: a file path when the file is on disk (the editor); in an
## exported game, a shipped server gets the file name and finds it in its maps/ folder.
func _map_argument(bundled: bool) -> String:
	var path := map
	if map.begins_with("res://") or map.begins_with("user://"):
		path = ProjectSettings.globalize_path(map)
	elif map.is_relative_path() and FileAccess.file_exists("res://" + map):
		path = ProjectSettings.globalize_path("res://" + map)
	if bundled and map.get_extension() != "" and not FileAccess.file_exists(path):
		return map.get_file()
	return path


# -- editor --------------------------------------------------------------------------------
## In the editor: try a TCP connection to the server every 2 s and update the node's warning.
func _probe_server() -> void:
	_probe.poll()
	var state := _probe.get_status()
	if state == StreamPeerTCP.STATUS_CONNECTED or state == StreamPeerTCP.STATUS_ERROR:
		_set_probe_answers(state == StreamPeerTCP.STATUS_CONNECTED)
		_probe.disconnect_from_host()
	elif Time.get_ticks_msec() / 1000.0 >= _probe_at:
		_probe.disconnect_from_host()  # a connection attempt still pending counts as no answer
		if state == StreamPeerTCP.STATUS_CONNECTING:
			_set_probe_answers(false)
		_probe_at = Time.get_ticks_msec() / 1000.0 + PROBE_EVERY
		if _probe.connect_to_host(host, port) != OK:
			_set_probe_answers(false)


func _set_probe_answers(answers: bool) -> void:
	if answers != _probe_answers:
		_probe_answers = answers
		update_configuration_warnings()
