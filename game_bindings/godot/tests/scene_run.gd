## Base of the headless test runs (integration.gd, launch_bundle.gd, jitter.gd): their
## arguments (--key=value after "--"), the JSON report's steps, waiting on frames, files in
## --dir, and the watch on a node's stream.
extends SceneTree

## A gap between Godot frames this long (60 a second here) means Godot was held up: signals
## emitted after it may be late by more than the tests allow (one 40 ms stream frame).
const STALL_S: float = 0.04
## One stream frame, in seconds.
const FRAME_S: float = 0.04
## How far back an underrun looks for late audio: the Godot frames since the mixer's pull that
## ran dry (the node sees it at its next frame, the watch a frame later: process_frame comes
## before the node's _process), with room; never from before the last (re)start.
const RECENT_S: float = 0.15

var args: Dictionary = {}
var report: Dictionary = {"steps": []}

## Underruns of the watched node: when each was seen, the latest the audio had reached the
## node over the last [constant RECENT_S] (see [method _lateness]), the longest of the last 3
## gaps between Godot frames (the node feeds its queue once a frame), and when playback
## restarted (-1 until it does), in seconds of [method Time.get_ticks_usec] (see
## [method _watch_stream]).
var _underrun_log: Array[Dictionary] = []
## Godot frames more than [constant STALL_S] apart while watching: [from, to] in seconds.
var _frame_stalls: Array[Array] = []
## The longest audio stopped reaching the watched node, in seconds.
var _longest_audio_wait: float = 0.0
## The latest audio reached the watched node, in seconds (see [method _lateness]).
var _most_late: float = 0.0
var _watched: ScorewrightMusic
var _frames_seen: int = 0
var _underruns_seen: int = 0
var _underruns_at_start: int = 0
var _was_playing: bool = false
var _last_audio_usec: int = 0
var _last_frame_usec: int = 0
var _frame_gaps: Array[float] = []
## The earliest the node has read stream frame 0, by the pace of the frames read since it last
## connected (INF until it reads one): a frame read later than this plus 40 ms per frame is late.
var _on_time: float = INF
## [seconds, how late] for the Godot frames of the last [constant RECENT_S].
var _recent_lateness: Array[Array] = []


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


## Notes, every frame from now on, when audio reaches [param music] and how late, each
## underrun with the latest audio before it, and each stall of Godot itself. The node must not
## run dry while its audio comes less late than its cushion allows; a machine that starves Godot
## or the server for longer (a loaded CI runner) can make it, and the test tells the two apart
## by that lateness; its signals are late after such a starvation too.
func _watch_stream(music: ScorewrightMusic) -> void:
	if music != _watched:
		_on_time = INF
	_watched = music
	_frames_seen = music.frames_received + music.lost_frames
	_underruns_seen = music.underruns
	_underruns_at_start = music.underruns
	_was_playing = music.is_playing_stream()
	_last_audio_usec = Time.get_ticks_usec()
	_last_frame_usec = _last_audio_usec
	_underrun_log.clear()
	_frame_stalls.clear()
	_frame_gaps.clear()
	_recent_lateness.clear()  # the pace (_on_time) holds while the node stays connected
	_longest_audio_wait = 0.0
	_most_late = 0.0
	if not process_frame.is_connected(_note_frame):
		process_frame.connect(_note_frame)


## What the watch saw since [method _watch_stream], with the node's underrun count, whether it
## plays now and its cushion, for the report. The watch goes on (it keeps the server's pace
## across windows) until the next [method _watch_stream] starts a new window.
func _watch_report() -> Dictionary:
	_note_frame()
	var music := _watched
	return {
		"underruns": music.underruns,
		"playing_at_end": music.is_playing_stream(),
		"cushion_frames": music.cushion_frames,
		"underruns_at_start": _underruns_at_start,
		"underrun_log": _underrun_log.duplicate(true),
		"frame_stalls": _frame_stalls.duplicate(),
		"longest_audio_wait": _longest_audio_wait,
		"most_late": _most_late,
	}


func _note_frame() -> void:
	if not is_instance_valid(_watched):
		return
	var now := Time.get_ticks_usec()
	if now - _last_frame_usec > STALL_S * 1e6:
		_frame_stalls.append([_last_frame_usec / 1e6, now / 1e6])
	_frame_gaps.append((now - _last_frame_usec) / 1e6)
	if _frame_gaps.size() > 3:
		_frame_gaps.remove_at(0)
	_last_frame_usec = now
	_longest_audio_wait = maxf(_longest_audio_wait, (now - _last_audio_usec) / 1e6)
	var frames := _watched.frames_received + _watched.lost_frames  # frames sent so far
	if frames != _frames_seen:
		_last_audio_usec = now
	var late := _lateness(now / 1e6, frames)
	var playing := _watched.is_playing_stream()
	var restarted := playing and (not _was_playing or _watched.underruns != _underruns_seen)
	for i: int in _watched.underruns - _underruns_seen:
		_underrun_log.append(
			{"t": now / 1e6, "late": late, "godot_gap": _frame_gaps.max(), "restarted": -1.0}
		)
	_underruns_seen = _watched.underruns
	_was_playing = playing
	if restarted:  # the start trims the queue to its start level: lateness before it is spent
		_recent_lateness.clear()
		for u: Dictionary in _underrun_log:
			if u["restarted"] < 0.0:
				u["restarted"] = now / 1e6


## How late the stream's audio reached the node, at most, over the last [constant RECENT_S]
## seconds up to [param now], with [param frames] sent so far: the server sends a frame every
## 40 ms, so frame n is on time when read by [member _on_time] + n * 40 ms. The first frame not
## read before this Godot frame is as late as now, whether read now (with any after it) or
## still missing. A Godot stall shows here too: the node reads nothing while stalled.
func _lateness(now: float, frames: int) -> float:
	if not _watched.is_server_connected():
		_on_time = INF  # a new connection paces its frames afresh
	var late := now - _frames_seen * FRAME_S - _on_time
	if frames != _frames_seen:
		_frames_seen = frames
		_on_time = minf(_on_time, now - (frames - 1) * FRAME_S)
	_recent_lateness.append([now, late])
	while _recent_lateness[0][0] < now - RECENT_S:
		_recent_lateness.remove_at(0)
	_most_late = maxf(_most_late, late)
	var most := 0.0
	for entry: Array in _recent_lateness:
		most = maxf(most, entry[1])
	return most


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
