## Base of the headless test runs (integration.gd, launch_bundle.gd): their arguments
## (--key=value after "--"), the JSON report's steps, waiting on frames, files in --dir.
extends SceneTree

var args: Dictionary = {}
var report: Dictionary = {"steps": []}


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
