## Registers the ScorewrightMusic node type in the editor's "Add Node" dialog.
@tool
extends EditorPlugin


func _enter_tree() -> void:
	add_custom_type("ScorewrightMusic", "Node", preload("scorewright_music.gd"), null)


func _exit_tree() -> void:
	remove_custom_type("ScorewrightMusic")
