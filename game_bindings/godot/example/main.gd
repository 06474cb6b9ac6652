## Example: arrow keys change the area, hold space to raise danger, K fires the death stinger,
## Esc pauses. Run `scorewright serve demo` first (state_maps/demo.yaml).
extends Node2D

const AREAS := ["forest", "cave", "castle"]

var _area := 0
var _danger := 0.0

@onready var music: ScorewrightMusic = $ScorewrightMusic
@onready var label: Label = $Label


func _ready() -> void:
	music.bar.connect(
		func(index: int) -> void: label.modulate = Color.WHITE if index % 2 else Color.GOLD
	)
	music.server_error.connect(func(code: String, message: String) -> void: push_warning(message))


func _process(delta: float) -> void:
	if Input.is_action_just_pressed("ui_right"):
		_area = (_area + 1) % AREAS.size()
		music.set_state("area", AREAS[_area])
	if Input.is_action_just_pressed("ui_left"):
		_area = (_area + AREAS.size() - 1) % AREAS.size()
		music.set_state("area", AREAS[_area])
	var target := 1.0 if Input.is_key_pressed(KEY_SPACE) else 0.0
	var next := move_toward(_danger, target, delta * 0.5)
	if absf(next - _danger) > 0.01 or (next != _danger and next in [0.0, 1.0]):
		_danger = next
		music.set_param("danger", _danger)  # send changes, not every frame
	if Input.is_action_just_pressed("ui_cancel"):
		music.transport("pause")
	if Input.is_key_pressed(KEY_K):
		music.trigger("player_died")
	var link := "connected" if music.is_server_connected() else "waiting for scorewright serve"
	label.text = (
		"area %s   danger %.2f   %s   underruns %d" % [AREAS[_area], _danger, link, music.underruns]
	)
