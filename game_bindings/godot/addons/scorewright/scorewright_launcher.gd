class_name ScorewrightLauncher
extends RefCounted
## Starts the Scorewright server a game uses, and stops it again (for [ScorewrightMusic]).
##
## Looks for the server the game ships (from [code]scorewright bundle[/code]) in a folder next
## to the exported game, else for [code]scorewright[/code] on the PATH (a development install),
## and runs [code]serve MAP[/code] on free ports, with a ring name and a token of its own and
## [code]--parent-pid[/code] (the game's process id), so the server stops by itself within a
## second if the game crashes or is killed. The token travels in the server's environment
## ([constant TOKEN_VARIABLE]), which only this user can read, never on its command line, which
## every local user can. Desktop platforms only.

## The bundled server's executable name (without [code].exe[/code]).
const BUNDLE_EXECUTABLE: String = "scorewright-server"
## The environment variable [code]serve[/code] takes its token from.
const TOKEN_VARIABLE: String = "SCOREWRIGHT_TOKEN"
## Seconds [method stop] gives the server to exit after SIGTERM before it kills it.
const STOP_GRACE: float = 3.0

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
## Why the last [method start] failed, or "".
var problem: String = ""


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


## Give [param path] its owner's execute bit if a build or copy step dropped it (Linux and
## macOS). Returns "" when it can be run, else why not.
static func make_executable(path: String) -> String:
	if OS.get_name() == "Windows" or not FileAccess.file_exists(path):
		return ""
	var mode: int = FileAccess.get_unix_permissions(path)
	if mode & FileAccess.UNIX_EXECUTE_OWNER:
		return ""
	var err := FileAccess.set_unix_permissions(path, mode | FileAccess.UNIX_EXECUTE_OWNER)
	if err == OK:
		return ""
	return "it is not executable and could not be made so (%s): chmod u+x it" % error_string(err)


## Start [param executable] [code]serve[/code] [param map_argument] (plus [param extra]
## arguments, which may override the ones chosen here). Returns false if it could not start
## ([member problem] says why).
func start(executable: String, map_argument: String, extra: PackedStringArray) -> bool:
	command = executable
	arguments = PackedStringArray()
	problem = make_executable(executable)
	var ports := free_ports(3)
	if ports.is_empty() and problem == "":
		problem = "no free ports on 127.0.0.1"
	if problem != "":
		return false
	port = ports[2]
	var crypto := Crypto.new()
	token = crypto.generate_random_bytes(16).hex_encode()
	ring = "godot-%d-%s" % [OS.get_process_id(), crypto.generate_random_bytes(4).hex_encode()]
	arguments = PackedStringArray(["serve", map_argument])
	arguments.append_array(["--control-port", str(ports[0]), "--audio-port", str(ports[1])])
	arguments.append_array(["--tcp-port", str(port), "--ring", ring])
	arguments.append_array(["--web-port", "0", "--parent-pid", str(OS.get_process_id())])
	arguments.append_array(extra)
	# create_process takes no environment: the server inherits the game's, which holds the
	# token only while the server starts
	var before := OS.get_environment(TOKEN_VARIABLE)
	OS.set_environment(TOKEN_VARIABLE, token)
	pid = OS.create_process(command, arguments)
	if before == "":
		OS.unset_environment(TOKEN_VARIABLE)
	else:
		OS.set_environment(TOKEN_VARIABLE, before)
	if pid <= 0:
		pid = 0
		problem = "the system refused to run it"
		return false
	return true


## True while the server started here runs.
func is_running() -> bool:
	return pid > 0 and OS.is_process_running(pid)


## How the server ended, for messages: its exit code when known.
func exit_description() -> String:
	var code := OS.get_process_exit_code(pid) if pid > 0 else -1
	return "has exited (exit code %d)" % code if code != -1 else "has exited"


## Stop the server: SIGTERM (it stops cleanly and removes its ring, in about 0.1 s) and up to
## [constant STOP_GRACE] seconds to exit, then a kill; on Windows a kill at once. Waits on the
## calling thread (the game's, normally for that 0.1 s; longer only for a hung server).
func stop() -> void:
	if is_running():
		if OS.get_name() != "Windows":
			OS.execute("kill", PackedStringArray(["-TERM", str(pid)]))
			var deadline := Time.get_ticks_msec() + int(STOP_GRACE * 1000.0)
			while OS.is_process_running(pid) and Time.get_ticks_msec() < deadline:
				OS.delay_msec(10)
		if OS.is_process_running(pid):
			OS.kill(pid)
	pid = 0


## The command line, for messages (the token is not on it).
func describe() -> String:
	return "%s %s" % [command, " ".join(arguments)]
