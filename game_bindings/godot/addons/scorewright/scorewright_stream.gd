class_name ScorewrightStream
extends RefCounted
## The stream buffer behind [ScorewrightMusic]: audio messages into an [AudioStreamGenerator].
##
## Holds [member cushion_frames] of audio and a little more before playback (re)starts (see
## [method _start_level]), keeps the queue near its target as the sound card's clock drifts from
## the server's (up to 0.5 % faster or slower), and tells where the listener is in the stream, so
## markers are emitted when heard.

## Sample rate of the stream (sample pairs per second).
const STREAM_RATE: int = 48000
## Sample pairs in one stream frame (40 ms).
const FRAME: int = 1920
## Markers held until heard, at most.
const MAX_MARKERS: int = 1024
## Largest speed-up or slow-down (0.5 %, below what ears notice) used to keep the queue near
## its target when the sound card's clock drifts from the server's.
const MAX_RATE_CORRECTION: float = 0.005
## Speed change per 40 ms frame that the queue's average is off its target.
const RATE_GAIN: float = 0.005
## Longest mixer period planned for, in sample pairs (0.2 s).
const MAX_MIX_BLOCK: int = 9600

## Stream audio held before playback starts, in 40 ms frames.
var cushion_frames: int = 2
## Times the stream ran dry while playing.
var underruns: int = 0
## Stream frames that never arrived.
var lost_frames: int = 0
## Stream frames received.
var frames_received: int = 0
## Generator skips while playing.
var skips: int = 0
## True while stream audio plays (the cushion has filled since the last reset).
var primed: bool = false
## What the generator holds, in sample pairs.
var capacity: int = 0
## The mixer's period as measured, in sample pairs.
var mix_block: int = 0

var _player: AudioStreamPlayer
var _playback: AudioStreamGeneratorPlayback
var _pending: PackedVector2Array = PackedVector2Array()
var _pending_pos: int = 0
var _pushed_end: int = -1
var _queue_avg: float = 0.0
var _queued_after_feed: int = 0
var _mix_samples: Array[int] = []
var _last_pull_usec: int = 0
var _last_pull_at: float = 0.0
var _skips_seen: int = 0
var _markers: Array[Dictionary] = []
var _last_seq: int = -1


## A generator sized for [param cushion] frames, for [param player] (which must be playing
## in the tree before [method attach]).
static func make_generator(cushion: int) -> AudioStreamGenerator:
	var stream := AudioStreamGenerator.new()
	stream.mix_rate = STREAM_RATE
	stream.buffer_length = ((cushion + 4) * FRAME + MAX_MIX_BLOCK) / float(STREAM_RATE)
	return stream


## Start feeding [param player]'s generator playback.
func attach(player: AudioStreamPlayer) -> void:
	_player = player
	_playback = player.get_stream_playback()
	capacity = _playback.get_frames_available()
	_last_pull_at = _now()


## Forget the stream (a connection starts or ends): what the generator holds plays out.
func reset() -> void:
	_pending.clear()
	_markers.clear()
	primed = false
	_pushed_end = -1
	_last_seq = -1


## An [code]audio[/code] message from the server.
func add_audio(msg: Dictionary) -> void:
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


## A [code]marker[/code] message, held until heard.
func add_marker(msg: Dictionary) -> void:
	if _markers.size() < MAX_MARKERS:
		_markers.append(msg)


## The markers heard by now, in order (removed from those held).
func take_heard_markers() -> Array[Dictionary]:
	var heard_now: Array[Dictionary] = []
	if _markers.is_empty():
		return heard_now
	var heard := heard_position()
	if heard < 0:
		return heard_now
	var keep: Array[Dictionary] = []
	for m: Dictionary in _markers:
		if int(m.get("pos", 0)) > heard:
			keep.append(m)
		else:
			heard_now.append(m)
	_markers = keep
	return heard_now


## The stream position (sample pairs) heard now, or -1 before any audio played; see
## [method ScorewrightMusic.get_heard_position].
func heard_position() -> int:
	if _pushed_end < 0 or _playback == null:
		return -1
	var mixed := _pushed_end - (capacity - _playback.get_frames_available())
	var since_mix := AudioServer.get_time_since_last_mix() * _player.pitch_scale
	var heard := mixed + int((since_mix - AudioServer.get_output_latency()) * STREAM_RATE)
	return mini(heard, _pushed_end)


## Seconds until [param pos] is heard (negative: already heard); INF before any audio.
func seconds_until_heard(pos: int) -> float:
	var heard := heard_position()
	if heard < 0:
		return INF
	return (pos - heard) / float(STREAM_RATE) / _player.pitch_scale


## Move audio into the generator; call once a frame.
func feed(delta: float) -> void:
	if _playback == null:
		return
	var queued := capacity - _playback.get_frames_available()
	var seen := _playback.get_skips()
	var pulled := seen != _skips_seen  # the mixer wanted more than the generator held
	_observe_mixing(queued, pulled)
	if primed and pulled:  # ran dry while the stream played: wait for the cushion again
		skips += seen - _skips_seen
		underruns += 1
		primed = false
	_skips_seen = seen
	var starting := not primed
	if starting:
		_queued_after_feed = queued
		if not _mixer_ready(queued, pulled):
			return
		var start := _start_level()  # reads the driver's mix time: only when about to start
		if _pending.size() < start:
			return
		_drop_oldest(_pending.size() - start)  # more is only delay
		primed = true
		_queue_avg = _target_level()
	var n := mini(_pending.size(), capacity - queued)
	if n > 0:
		_playback.push_buffer(_pending.slice(0, n))
		_pending = _pending.slice(n)
		_pending_pos += n
		_pushed_end = _pending_pos
	if starting:  # skips the pull that found the generator empty went on counting after `seen`
		_skips_seen = _playback.get_skips()  # (a busy mixer, or while _start_level waited) are past
	_queued_after_feed = queued + n
	_correct_rate(queued + n + _pending.size(), delta)


static func _stereo(pcm: PackedByteArray) -> PackedVector2Array:
	var samples := pcm.to_float32_array()
	var frames := PackedVector2Array()
	frames.resize(samples.size() / 2)
	for i: int in frames.size():
		frames[i] = Vector2(samples[2 * i], samples[2 * i + 1])
	return frames


## Playback (re)starts right after the mixer pulled from the empty generator, once
## [method _start_level] has arrived: the audio arriving before its next pull adds to the
## queue, so the mixer's period (10-25 ms with a sound card, 85-93 ms with the Dummy driver)
## costs no extra latency up front.
func _mixer_ready(queued: int, pulled: bool) -> bool:
	if pulled and queued == 0:
		return true
	return _now() - _last_pull_at > 0.25  # a mixer that does not pull: start anyway


## Audio to (re)start with, in sample pairs: the cushion, half a frame, and what the mixer has
## played since its last pull. Playback then starts as if the cushion had been there at that pull
## (seen up to a game frame later, or a mixer period after a hitch of the game), and as high as
## the rate correction keeps the queue on average: audio comes in 40 ms frames, so the queue just
## before one arrives is up to a frame below its level just after; the target holds it half a
## frame above that low point. Starting with the bare cushion left the queue that much lower
## until the rate correction (0.5 % at most) had caught up, seconds later: with every third packet
## 35 ms late, as little as 8 ms was left after a mixer pull (19 ms now; tests/jitter.gd), and
## after a hitch the mixer's next pull could run dry again.
func _start_level() -> int:
	var since_pull := int(AudioServer.get_time_since_last_mix() * STREAM_RATE)
	return cushion_frames * FRAME + FRAME / 2 + mini(since_pull, MAX_MIX_BLOCK)


## The queue's average while playing: the cushion plus half of what the mixer takes at once.
func _target_level() -> float:
	return cushion_frames * FRAME + mix_block / 2.0


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
	elif primed and queued < _queued_after_feed:
		_note_mix_block(_queued_after_feed - queued)


func _note_mix_block(samples: int) -> void:
	_mix_samples.append(mini(samples, MAX_MIX_BLOCK))  # a long hitch is not the mixer's period
	if _mix_samples.size() > 32:
		_mix_samples.remove_at(0)
	mix_block = _mix_samples.max()


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


static func _now() -> float:
	return Time.get_ticks_msec() / 1000.0
