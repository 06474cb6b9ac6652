@tool
extends EditorPlugin
## Enables the Scorewright addon. The ScorewrightMusic node registers itself through its
## class_name (with its icon), so it is in the Add Node dialog whether or not this plugin is on.
