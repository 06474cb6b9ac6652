## Headless run of ScorewrightMusic against a stand-in server in this script: 40 ms frames of a
## tone, each sent on time except every [code]--every[/code]-th, sent [code]--late[/code] ms late
## (a busy machine or network). The connection is dropped every [code]--seconds[/code] of play, so
## the node starts playback afresh [code]--windows[/code] times: a start is when its queue is
## shortest. [code]--busy-mixer=N[/code] puts N reverbs on the master bus, so each pull of the
## mixer takes long enough for a start to fall inside one. Writes report.json (a watch report per
## window) for tests/test_godot_runtime.py.
##   godot --headless --path game_bindings/godot -s res://tests/jitter.gd -- \
##     --port=P --dir=DIR --late=25 --every=3 --windows=8 --seconds=1.5 --busy-mixer=20
extends "res://tests/scene_run.gd"

const FRAME: int = ScorewrightStream.FRAME
const FRAME_USEC: int = 40000

var music: ScorewrightMusic
var _listener: TCPServer = TCPServer.new()
var _peer: StreamPeerTCP
var _connected_usec: int = 0
var _next_frame: int = 0
var _late_sent: int = 0
## The least audio left queued right after a pull of the mixer while playing, in sample pairs
## (-1: no pull seen).
var _min_after_pull: int = -1
var _pcm: PackedByteArray


func _initialize() -> void:
	Engine.max_fps = 60
	args = _parse_args()
	_run()


func _run() -> void:
	var ok := _step("listening", _listener.listen(int(args["port"]), "127.0.0.1") == OK)
	_pcm = _tone()
	music = ScorewrightMusic.new()
	music.port = int(args["port"])
	music.launch_server = false
	root.add_child(music)
	process_frame.connect(_serve)
	for i: int in int(args.get("busy-mixer", "0")):
		AudioServer.add_bus_effect(0, AudioEffectReverb.new())
	report["windows"] = []
	for i: int in int(args.get("windows", "6")):
		ok = ok and await _play_window(float(args.get("seconds", "2")))
		if not ok:
			break
		_peer.disconnect_from_host()  # the node reconnects by itself, and starts afresh
	report["ok"] = ok
	_write_file("report.json", JSON.stringify(report, "  "))
	music.free()
	quit(0 if ok else 1)


## From the connection (re)made until [param seconds] after playback started.
func _play_window(seconds: float) -> bool:
	var up := await _until(func() -> bool: return _peer != null and _peer_open(), 5.0)
	_watch_stream(music)
	_late_sent = 0
	_min_after_pull = -1
	var primed := up and await _until(music.is_playing_stream, 5.0)
	await _sleep(seconds)
	var window := _watch_report()
	window.merge(
		{
			"least_after_pull_ms": _min_after_pull * 1000.0 / ScorewrightStream.STREAM_RATE,
			"late_sent": _late_sent,
			"lost_frames": music.lost_frames
		}
	)
	report["windows"].append(window)
	return _step("window %d played" % report["windows"].size(), primed)


## Once a frame (before the node reads): note the queue, take a new connection, send the frames
## that are due.
func _serve() -> void:
	_note_queue_after_pull()
	if _listener.is_connection_available():
		_peer = _listener.take_connection()
		_connected_usec = Time.get_ticks_usec()
		_next_frame = 0
	if _peer == null or not _peer_open():
		return
	while _due_usec(_next_frame) <= Time.get_ticks_usec():
		var msg := {"type": "audio", "seq": _next_frame, "pos": _next_frame * FRAME, "pcm": _pcm}
		_peer.put_data(ScorewrightConnection.framed(msg))
		if _is_late(_next_frame):
			_late_sent += 1
		_next_frame += 1


## How close the node came to running dry: the queue just after the mixer took its block (it
## shrank since the node's last feed), read before the node feeds again this frame.
func _note_queue_after_pull() -> void:
	var stream := music._stream
	if stream._playback == null or not stream.primed:
		return
	var queued := stream.capacity - stream._playback.get_frames_available()
	if queued < stream._queued_after_feed:
		_min_after_pull = queued if _min_after_pull < 0 else mini(_min_after_pull, queued)


func _peer_open() -> bool:
	_peer.poll()
	return _peer.get_status() == StreamPeerTCP.STATUS_CONNECTED


func _due_usec(frame: int) -> int:
	var late_usec := int(float(args.get("late", "25")) * 1000.0) if _is_late(frame) else 0
	return _connected_usec + frame * FRAME_USEC + late_usec


func _is_late(frame: int) -> bool:
	var every := int(args.get("every", "3"))
	return frame % every == every - 1


## One 40 ms frame of a quiet 440 Hz tone, as the server's float32 stereo PCM.
static func _tone() -> PackedByteArray:
	var samples := PackedFloat32Array()
	samples.resize(2 * FRAME)
	for i: int in FRAME:
		var v := 0.1 * sin(TAU * 440.0 * i / ScorewrightStream.STREAM_RATE)
		samples[2 * i] = v
		samples[2 * i + 1] = v
	return samples.to_byte_array()
