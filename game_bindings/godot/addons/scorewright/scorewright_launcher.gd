class_name ScorewrightLauncher
extends RefCounted
## Starts the Scorewright server a game uses, and stops it again (for [ScorewrightMusic]).
##
## Looks for the server the game ships (from [code]scorewright bundle[/code]) in a folder next
## to the exported game, else for [code]scorewright[/code] on the PATH (a development install),
## and runs [code]serve MAP[/code] on free ports, with a ring name and a token of its own and
## [code]--parent-pid[/code] (the game's process id), so the server stops by itself within a
## second if the game crashes or is killed. Desktop platforms only.

## The bundled server's executable name (without [code].exe[/code]).
const BUNDLE_EXECUTABLE: String = "scorewright-server"

## The running server's process id, or 0.
var pid: int = 0
## Its framed-TCP port.
var port: int = 0
## The token it requires in [code]hello[/code].
var token: String = ""
## Its shared-memory ring's name.
var ring: String = ""
## The executable that was started.
var command: String = ""
## The arguments it was started with.
var arguments: PackedStringArray = PackedStringArray()


## The bundled server in [param folder] (absolute, or relative to the folder of the game's
## executable), or "" when there is none.
static func find_bundled(folder: String) -> String:
	if folder == "":
		return ""
	var base := folder
	if not folder.is_absolute_path():
		base = OS.get_executable_path().get_base_dir().path_join(folder)
	var suffix := ".exe" if OS.get_name() == "Windows" else ""
	var path := base.path_join(BUNDLE_EXECUTABLE + suffix)
	return path if FileAccess.file_exists(path) else ""


## [param name] on the PATH (or a path to it) that exists, or "".
static func find_command(name: String) -> String:
	if name.is_absolute_path() or name.contains("/"):
		return name if FileAccess.file_exists(name) else ""
	var windows := OS.get_name() == "Windows"
	var separator := ";" if windows else ":"
	for folder: String in OS.get_environment("PATH").split(separator, false):
		for suffix: String in [".exe", ".cmd", ""] if windows else [""]:
			var path := folder.path_join(name + suffix)
			if FileAccess.file_exists(path):
				return path
	return ""


## [param count] distinct TCP ports free on 127.0.0.1 now (empty if none could be found).
static func free_ports(count: int) -> Array[int]:
	var servers: Array[TCPServer] = []
	var ports: Array[int] = []
	for i: int in count:
		var server := TCPServer.new()
		if server.listen(0, "127.0.0.1") != OK:
			break
		servers.append(server)
		ports.append(server.get_local_port())
	for server: TCPServer in servers:
		server.stop()
	if ports.size() != count:
		ports.clear()
	return ports


## Start [param executable] [code]serve[/code] [param map_argument] (plus [param extra]
## arguments, which may override the ones chosen here). Returns false if it could not start.
func start(executable: String, map_argument: String, extra: PackedStringArray) -> bool:
	var ports := free_ports(3)
	if ports.is_empty():
		return false
	port = ports[2]
	var crypto := Crypto.new()
	token = crypto.generate_random_bytes(16).hex_encode()
	ring = "godot-%d-%s" % [OS.get_process_id(), crypto.generate_random_bytes(4).hex_encode()]
	command = executable
	arguments = PackedStringArray(["serve", map_argument])
	arguments.append_array(["--control-port", str(ports[0]), "--audio-port", str(ports[1])])
	arguments.append_array(["--tcp-port", str(port), "--ring", ring, "--token", token])
	arguments.append_array(["--web-port", "0", "--parent-pid", str(OS.get_process_id())])
	arguments.append_array(extra)
	pid = OS.create_process(command, arguments)
	if pid <= 0:
		pid = 0
		return false
	return true


## True while the server started here runs.
func is_running() -> bool:
	return pid > 0 and OS.is_process_running(pid)


## Stop the server: SIGTERM (it stops cleanly and removes its ring), or TerminateProcess on
## Windows.
func stop() -> void:
	if is_running():
		if OS.get_name() == "Windows":
			OS.kill(pid)
		else:
			OS.execute("kill", PackedStringArray(["-TERM", str(pid)]))
	pid = 0


## The command line, for messages (the token left out).
func describe() -> String:
	var line := "%s %s" % [command, " ".join(arguments)]
	return line.replace(token, "***") if token != "" else line
