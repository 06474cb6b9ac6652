## Headless run for the repository's tests/test_godot_runtime.py: ScorewrightMusic starts the
## server a game ships (a `scorewright bundle` folder) by itself, plays it and stops it when the
## node is freed; a second node's server is left running and the test SIGKILLs Godot to see
## that server stop by itself. Writes report.json, then the file "ready", into --dir.
##   godot --headless --path game_bindings/godot -s res://tests/launch_bundle.gd -- \
##     --folder=BUNDLE --map=FILE.yaml --dir=DIR
extends SceneTree

var args: Dictionary = {}
var report: Dictionary = {"steps": [], "godot_pid": OS.get_process_id()}
var beats: int = 0


func _initialize() -> void:
	Engine.max_fps = 60
	args = _parse_args()
	_run()


func _run() -> void:
	var ok := await _launch_play_and_stop()
	ok = ok and await _launch_and_stay()
	report["ok"] = ok
	_write_file("report.json", JSON.stringify(report, "  "))
	_write_file("ready", "now")
	if not ok:
		quit(1)
		return
	await _sleep(120.0)  # the test kills Godot before this ends
	quit(1)


func _node() -> ScorewrightMusic:
	var music := ScorewrightMusic.new()
	music.server_folder = args["folder"]
	music.map = args["map"]
	music.scorewright_command = "no-such-command"  # only the shipped server may be used
	music.port = 9  # nothing listens there: the node must not wait for it
	return music


## Starts at once (no second of waiting for a server), plays, stops the server when freed.
func _launch_play_and_stop() -> bool:
	var music := _node()
	music.beat.connect(func(_i: int) -> void: beats += 1)
	var added := Time.get_ticks_msec()
	root.add_child(music)
	var started := await _until(func() -> bool: return music.get_server_pid() != 0, 5.0)
	var first := {"started_after": (Time.get_ticks_msec() - added) / 1000.0}
	var pid := music.get_server_pid()
	var launcher: ScorewrightLauncher = music._launcher
	first.merge({"pid": pid, "command": launcher.command, "arguments": launcher.arguments})
	first.merge({"token": launcher.token, "ring": launcher.ring, "port": launcher.port})
	var up := started and await _until(func() -> bool: return not music.status.is_empty(), 30.0)
	first["connected_after"] = (Time.get_ticks_msec() - added) / 1000.0
	var playing := up and await _until(music.is_playing_stream, 10.0)
	var frames_before := music.frames_received
	beats = 0
	await _sleep(3.0)
	first.merge(
		{"map": music.status.get("map", ""), "frames": music.frames_received - frames_before}
	)
	first.merge({"beats": beats, "underruns": music.underruns})
	music.free()
	var stopped := await _until(func() -> bool: return not OS.is_process_running(pid), 10.0)
	first["stopped"] = stopped
	report["first"] = first
	return _step("launched the shipped server, played, stopped it", playing and stopped)


## A second node's server, connected, left running for the kill.
func _launch_and_stay() -> bool:
	var music := _node()
	root.add_child(music)
	var up := await _until(func() -> bool: return not music.status.is_empty(), 30.0)
	report["second"] = {"pid": music.get_server_pid(), "map": music.status.get("map", "")}
	return _step("second server up", up)


func _until(condition: Callable, timeout: float) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout * 1000.0)
	while not condition.call():
		if Time.get_ticks_msec() > deadline:
			return false
		await process_frame
	return true


func _sleep(seconds: float) -> void:
	var end := Time.get_ticks_msec() + int(seconds * 1000.0)
	while Time.get_ticks_msec() < end:
		await process_frame


func _step(what: String, ok: bool) -> bool:
	print(("ok " if ok else "FAIL ") + what)
	report["steps"].append({"step": what, "ok": ok})
	return ok


func _parse_args() -> Dictionary:
	var out: Dictionary = {}
	for arg: String in OS.get_cmdline_user_args():
		var kv := arg.trim_prefix("--").split("=", true, 1)
		out[kv[0]] = kv[1] if kv.size() > 1 else ""
	return out


func _write_file(name: String, text: String) -> void:
	var f := FileAccess.open(str(args["dir"]).path_join(name), FileAccess.WRITE)
	f.store_string(text)
	f.close()
