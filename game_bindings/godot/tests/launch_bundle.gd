## Headless run for the repository's tests/test_godot_runtime.py: ScorewrightMusic starts the
## server a game ships (a `scorewright bundle` folder) by itself, plays it and stops it when the
## node is freed; a launcher's stop() kills a server that ignores SIGTERM after its grace; a
## second node's server is left running and the test SIGKILLs Godot to see that server stop by
## itself. Writes report.json, then the file "ready", into --dir.
##   godot --headless --path game_bindings/godot -s res://tests/launch_bundle.gd -- \
##     --folder=BUNDLE --map=FILE.yaml --dir=DIR
extends "res://tests/scene_run.gd"

var beats: int = 0


func _initialize() -> void:
	Engine.max_fps = 60
	args = _parse_args()
	report["godot_pid"] = OS.get_process_id()
	_run()


func _run() -> void:
	var ok := await _launch_play_and_stop()
	ok = ok and await _stop_kills_a_server_that_ignores_sigterm()
	ok = ok and await _says_how_a_server_exited()
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
	first["token_left_in_game_env"] = OS.has_environment(ScorewrightLauncher.TOKEN_VARIABLE)
	var up := started and await _until(func() -> bool: return not music.status.is_empty(), 30.0)
	first["connected_after"] = (Time.get_ticks_msec() - added) / 1000.0
	_watch_stream(music)  # underruns count from the first audio on
	var playing := up and await _until(music.is_playing_stream, 10.0)
	var frames_before := music.frames_received
	beats = 0
	await _sleep(3.0)
	first.merge(
		{"map": music.status.get("map", ""), "frames": music.frames_received - frames_before}
	)
	first["beats"] = beats
	first.merge(_watch_report())
	music.free()
	var stopped := await _until(func() -> bool: return not OS.is_process_running(pid), 10.0)
	first["stopped"] = stopped
	report["first"] = first
	return _step("launched the shipped server, played, stopped it", playing and stopped)


## A "server" that ignores SIGTERM (a shell script, written without its execute bit): start()
## gives it the bit and runs it; stop() waits its grace, then kills it.
func _stop_kills_a_server_that_ignores_sigterm() -> bool:
	var dir := str(args["dir"])
	var script := dir.path_join("stuck-server")
	var trapped := dir.path_join("trapped")
	_write_file("stuck-server", "#!/bin/sh\ntrap '' TERM\ntouch '%s'\nexec sleep 60\n" % trapped)
	var launcher := ScorewrightLauncher.new()
	var started := launcher.start(script, "level.yaml", PackedStringArray())
	var mode: int = FileAccess.get_unix_permissions(script)
	var pid := launcher.pid
	var ready := (
		started and await _until(func() -> bool: return FileAccess.file_exists(trapped), 10.0)
	)
	var since := Time.get_ticks_msec()
	launcher.stop()
	var stuck := {"started": started, "problem": launcher.problem, "trapped": ready}
	stuck.merge({"executable": mode & FileAccess.UNIX_EXECUTE_OWNER != 0})
	stuck["waited_ms"] = Time.get_ticks_msec() - since
	stuck["gone"] = await _until(func() -> bool: return not OS.is_process_running(pid), 5.0)
	report["stuck"] = stuck
	return _step("stop() kills a server that ignores SIGTERM", ready and stuck["gone"])


## A "server" that exits at once with code 3: the launcher's message for it says so.
func _says_how_a_server_exited() -> bool:
	var script := str(args["dir"]).path_join("failing-server")
	_write_file("failing-server", "#!/bin/sh\nexit 3\n")
	var launcher := ScorewrightLauncher.new()
	var started := launcher.start(script, "level.yaml", PackedStringArray())
	var ended := started and await _until(func() -> bool: return not launcher.is_running(), 10.0)
	report["exited"] = launcher.exit_description()
	return _step("says how its server exited", ended)


## A second node's server, connected, left running for the kill.
func _launch_and_stay() -> bool:
	var music := _node()
	root.add_child(music)
	var up := await _until(func() -> bool: return not music.status.is_empty(), 30.0)
	var pid := music.get_server_pid()
	report["second"] = {
		"pid": pid, "map": music.status.get("map", ""), "port": music._launcher.port
	}
	return _step("second server up", up)
