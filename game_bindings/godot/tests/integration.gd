## Headless integration run of ScorewrightMusic against a live `scorewright serve`, driven by
## the repository's tests/test_godot_runtime.py, which starts the server and asserts on the
## JSON report this writes. Loads the example scene, presses its keys, plays the stream, blocks
## its own main thread once (a hitch), waits for the server to be killed and restarted, and lets
## a second node start its own server.
##   godot --headless --path game_bindings/godot -s res://tests/integration.gd -- \
##     --port=P --dead-port=Q --dir=DIR --play=10 [--launch-port=R --command=C --map=M --extra=A,B]
extends "res://tests/scene_run.gd"

const EXAMPLE: String = "res://example/main.tscn"

var music: ScorewrightMusic
var replies: Array[Dictionary] = []
var errors: Array[Dictionary] = []
var beats: Array[Dictionary] = []
var bars: Array[Dictionary] = []
var disconnected_at: float = 0.0


func _initialize() -> void:
	Engine.max_fps = 60
	args = _parse_args()
	_run()


func _run() -> void:
	var ok := await _check_editor_warning()
	ok = ok and await _connect_example()
	ok = ok and await _press_keys_and_send()
	ok = ok and await _play(float(args.get("play", "10")))
	ok = ok and await _survive_a_hitch()
	ok = ok and await _survive_restart()
	if ok and args.has("launch-port"):
		ok = await _launch_own_server()
	report["ok"] = ok
	_write_report()
	if music != null:
		music.get_parent().free()
	quit(0 if ok else 1)


# -- steps ---------------------------------------------------------------------------------
func _check_editor_warning() -> bool:
	var probe := ScorewrightMusic.new()
	probe.port = int(args["dead-port"])
	var warned := await _until(
		func() -> bool:
			return _probed(probe) and not probe._get_configuration_warnings().is_empty(),
		6.0
	)
	report["editor_warning_dead"] = "\n".join(probe._get_configuration_warnings())
	probe.port = int(args["port"])
	var cleared := await _until(
		func() -> bool: return _probed(probe) and probe._get_configuration_warnings().is_empty(),
		6.0
	)
	report["editor_warning_live"] = "\n".join(probe._get_configuration_warnings())
	probe.free()
	return _step("editor warning", warned and cleared)


func _connect_example() -> bool:
	var scene: Node = (load(EXAMPLE) as PackedScene).instantiate()
	music = scene.get_node("ScorewrightMusic")
	music.port = int(args["port"])
	music.launch_server = false
	music.replied.connect(func(id: int, r: Dictionary) -> void: replies.append({"id": id, "r": r}))
	music.server_error.connect(
		func(code: String, message: String) -> void: errors.append({"code": code, "msg": message})
	)
	music.beat.connect(func(i: int) -> void: beats.append(_heard("beat", i)))
	music.bar.connect(func(i: int) -> void: bars.append(_heard("bar", i)))
	music.disconnected.connect(func() -> void: disconnected_at = Time.get_unix_time_from_system())
	root.add_child(scene)
	var up := await _until(func() -> bool: return not music.status.is_empty(), 20.0)
	_watch_stream(music)  # underruns count from the first audio on
	report["status_map"] = music.status.get("map", "")
	report["tempo"] = music.status.get("tempo", 0.0)
	report["capacity"] = music._stream.capacity
	report["mix_rate"] = AudioServer.get_mix_rate()
	report["output_latency"] = AudioServer.get_output_latency()
	return _step("connected", up)


## The example's keys (area, danger, stinger), then notes from code, then a bad value.
func _press_keys_and_send() -> bool:
	var sent: Dictionary = {}
	for key: Key in [KEY_RIGHT, KEY_UP, KEY_K]:
		sent[OS.get_keycode_string(key)] = await _reply_to(func() -> void: _press(key))
	sent["notes"] = await _reply_to(func() -> void: music.notes([60, 64, 67]))
	report["replies"] = sent
	report["example_area"] = music.get_parent().get("area")
	music.set_state("area", "the moon")
	var refused := await _until(func() -> bool: return not errors.is_empty(), 5.0)
	report["errors"] = errors.duplicate()
	return _step("game state sent", refused)


func _play(seconds: float) -> bool:
	var primed := await _until(music.is_playing_stream, 10.0)
	var frames_at_start := music.frames_received
	beats.clear()
	bars.clear()
	await _sleep(seconds)
	report["play"] = {
		"seconds": seconds,
		"frames": music.frames_received - frames_at_start,
		"lost_frames": music.lost_frames,
		"skips": music.get_skips(),
		"mix_block": music._stream.mix_block,
		"beats": beats.duplicate(),
		"bars": bars.duplicate(),
	}
	report["play"].merge(_watch_report())
	return _step("played", primed)


## Blocks Godot's main thread for 0.35 s (a game's loading hitch), longer than the node ever
## queues (its target plus 4 frames, 0.29 s here), then plays on: one underrun, and the stream
## back.
func _survive_a_hitch() -> bool:
	_watch_stream(music)
	await process_frame
	OS.delay_msec(350)
	await _sleep(1.5)
	report["hitch"] = _watch_report()
	return _step("survived a hitch", music.is_playing_stream())


## Asks the test to SIGKILL and restart the server (a file in --dir), then measures the return.
func _survive_restart() -> bool:
	_watch_stream(music)
	var frames_before := music.frames_received
	_write_file("kill", "now")
	var dropped := await _until(func() -> bool: return disconnected_at > 0.0, 15.0)
	var resumed := dropped and await _until(music.is_playing_stream, 30.0)
	var resumed_at := Time.get_unix_time_from_system()
	var frames_resumed := music.frames_received
	await _sleep(2.0)
	report["restart"] = {
		"disconnected_at": disconnected_at,
		"resumed_at": resumed_at,
		"frames_after": music.frames_received - frames_resumed,
		"frames_before": frames_before,
		"lost_frames": music.lost_frames,
		"skips": music.get_skips(),
	}
	report["restart"].merge(_watch_report())
	return _step("reconnected", resumed)


## A second node with Launch Server on, pointed at a port nothing listens on, and no server
## shipped: after a second it runs the command (on free ports of its own).
func _launch_own_server() -> bool:
	var own := ScorewrightMusic.new()
	own.port = int(args["launch-port"])
	own.server_folder = ""
	own.scorewright_command = args["command"]
	own.map = args["map"]
	own.server_arguments = PackedStringArray(str(args.get("extra", "")).split(",", false))
	root.add_child(own)
	await _until(func() -> bool: return own.get_server_pid() != 0, 10.0)
	var pid: int = own.get_server_pid()
	_write_file("launched_pid", str(pid))  # so the test can stop it whatever happens here
	var up := await _until(func() -> bool: return not own.status.is_empty(), 40.0)
	report["launch"] = {"pid": pid, "map": own.status.get("map", ""), "connected": up}
	root.remove_child(own)
	own.free()
	var stopped := await _until(func() -> bool: return not OS.is_process_running(pid), 10.0)
	report["launch"]["stopped"] = stopped
	return _step("launched and stopped a server", up and stopped)


# -- helpers -------------------------------------------------------------------------------
func _probed(probe: ScorewrightMusic) -> bool:
	probe._probe_server()
	return true


func _heard(kind: String, index: int) -> Dictionary:
	return {
		"kind": kind,
		"index": index,
		"t": Time.get_ticks_usec() / 1e6,
		"heard_pos": music.get_heard_position()
	}


func _reply_to(action: Callable) -> Dictionary:
	var before := replies.size()
	action.call()
	if await _until(func() -> bool: return replies.size() > before, 5.0):
		return replies[before]["r"]
	return {}


func _press(key: Key) -> void:
	for pressed: bool in [true, false]:
		var event := InputEventKey.new()
		event.keycode = key
		event.pressed = pressed
		root.push_input(event)


func _write_report() -> void:
	_write_file("report.json", JSON.stringify(report, "  "))
