extends Node2D
## A tiny playable scene for the Scorewright addon (the demo map's names).
##
## Left/Right: change the area (forest, cave, castle). Up/Down: danger up or down by 0.25
## (combat above 0.6). K: the player dies (stinger). P: pause or play the music. The square
## flashes on every beat heard, and turns gold on every bar. With Launch Server on (the
## default), the node starts `scorewright serve demo` if none is running.

const AREAS: Array[String] = ["forest", "cave", "castle"]

var area: int = 0
var danger: float = 0.0
var paused: bool = false
var _flash: float = 0.0
var _bar_flash: bool = false

@onready var music: ScorewrightMusic = $ScorewrightMusic
@onready var label: Label = $Label
@onready var pulse: ColorRect = $Pulse


func _ready() -> void:
	music.beat.connect(_on_beat)
	music.bar.connect(_on_bar)
	music.connected.connect(_on_connected)
	music.server_error.connect(_on_server_error)


func _unhandled_input(event: InputEvent) -> void:
	if not event is InputEventKey or not event.pressed or event.echo:
		return
	match (event as InputEventKey).keycode:
		KEY_RIGHT:
			_set_area(area + 1)
		KEY_LEFT:
			_set_area(area - 1)
		KEY_UP:
			_set_danger(danger + 0.25)
		KEY_DOWN:
			_set_danger(danger - 0.25)
		KEY_K:
			music.trigger("player_died")
		KEY_P:
			paused = not paused
			music.transport("pause" if paused else "play")


func _process(delta: float) -> void:
	_flash = maxf(_flash - delta * 4.0, 0.0)
	var lit := Color.GOLD if _bar_flash else Color.WHITE
	pulse.color = Color(0.2, 0.2, 0.25).lerp(lit, _flash)
	var link := "connected" if music.is_server_connected() else "waiting for scorewright serve"
	var state := "area %s   danger %.2f   %s" % [AREAS[area], danger, link]
	label.text = state + "\nLeft/Right area   Up/Down danger   K stinger   P pause"


func _set_area(index: int) -> void:
	area = posmod(index, AREAS.size())
	music.set_state("area", AREAS[area])


func _set_danger(value: float) -> void:
	danger = clampf(value, 0.0, 1.0)
	music.set_param("danger", danger)


func _on_beat(_index: int) -> void:
	_flash = 1.0
	_bar_flash = false


func _on_bar(_index: int) -> void:
	_bar_flash = true


func _on_connected() -> void:
	# the server keeps its state across our reconnects, but a restarted one starts fresh
	music.set_state("area", AREAS[area])
	music.set_param("danger", danger)


func _on_server_error(code: String, message: String) -> void:
	label.text = "%s: %s" % [code, message]
