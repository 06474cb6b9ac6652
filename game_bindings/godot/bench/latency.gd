## Latency of ScorewrightMusic in Godot, driven by the repository's bench/bench_godot.py: for
## each cushion, a node plays the stream while `set_param` messages go out at random
## intervals; each reply's `pos` (the first sample generated under the change) is converted to
## the moment it is heard with seconds_until_heard(). Writes a JSON report.
##   godot --headless --path game_bindings/godot -s res://bench/latency.gd -- \
##     --port=P --out=FILE --messages=200 --cushions=1,2,3,4
extends SceneTree

var args: Dictionary = {}
var sent: Dictionary = {}
var samples: Array[Dictionary] = []


func _initialize() -> void:
	Engine.max_fps = 60
	for arg: String in OS.get_cmdline_user_args():
		var kv := arg.trim_prefix("--").split("=", true, 1)
		args[kv[0]] = kv[1] if kv.size() > 1 else ""
	_run()


func _run() -> void:
	var results: Dictionary = {}
	for cushion: String in str(args.get("cushions", "3")).split(","):
		results[cushion] = await _measure(int(cushion), int(args.get("messages", "200")))
	var out := {
		"godot": Engine.get_version_info()["string"],
		"driver":
		AudioServer.get_driver_name() if AudioServer.has_method("get_driver_name") else "",
		"mix_rate": AudioServer.get_mix_rate(),
		"output_latency_s": AudioServer.get_output_latency(),
		"cushions": results,
	}
	var f := FileAccess.open(str(args["out"]), FileAccess.WRITE)
	f.store_string(JSON.stringify(out))
	f.close()
	quit(0)


func _measure(cushion: int, messages: int) -> Dictionary:
	var music := ScorewrightMusic.new()
	music.port = int(args["port"])
	music.launch_server = false
	music.cushion_frames = cushion
	music.replied.connect(func(id: int, reply: Dictionary) -> void: _on_reply(music, id, reply))
	root.add_child(music)
	sent.clear()
	samples.clear()
	var deadline := Time.get_ticks_msec() + 20000
	while not music.is_playing_stream() and Time.get_ticks_msec() < deadline:
		await process_frame
	await _sleep(2.0)  # settle: the mixer's period is measured, the drift control is quiet
	var skips_before := music.get_skips()
	var rng := RandomNumberGenerator.new()
	rng.seed = cushion
	for i: int in messages:
		var id := music.set_param("danger", rng.randf())
		sent[id] = Time.get_unix_time_from_system()
		await _sleep(rng.randf_range(0.06, 0.16))
	await _sleep(1.0)
	var result := {
		"replies": samples.size(),
		"skips": music.get_skips() - skips_before,
		"underruns": music.underruns,
		"lost_frames": music.lost_frames,
		"mix_block": music._stream.mix_block,
		"samples": samples.duplicate(),
	}
	music.free()
	return result


func _on_reply(music: ScorewrightMusic, id: int, reply: Dictionary) -> void:
	if not sent.has(id) or reply.get("type") != "ok":
		return
	var now := Time.get_unix_time_from_system()
	var heard_at := now + music.seconds_until_heard(int(reply["pos"]))
	(
		samples
		. append(
			{
				"heard_ms": (heard_at - sent[id]) * 1000.0,
				"due_ms": (float(reply["due"]) - sent[id]) * 1000.0,
				"reply_ms": (now - sent[id]) * 1000.0,
			}
		)
	)


func _sleep(seconds: float) -> void:
	var end := Time.get_ticks_msec() + int(seconds * 1000.0)
	while Time.get_ticks_msec() < end:
		await process_frame
