"""`scorewright serve` (the long-running middleware process) and `scorewright studio` (the same,
with its page opened in the browser; or a page attached to a server that a game drives)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path

from .output import error, say
from .render import open_map

STUDIO_URL = "http://127.0.0.1:7710/"
TOKEN_ENV = "SCOREWRIGHT_TOKEN"


def resolve_token(args: argparse.Namespace) -> None:
    """--token, else $SCOREWRIGHT_TOKEN (how launchers pass it: the environment is private to
    the user, the command line is not); removed from the environment so children never see it."""
    from_env = os.environ.pop(TOKEN_ENV, "")
    if args.token is None and from_env:
        args.token = from_env


def start_server(args: argparse.Namespace):
    """A started Server for the options serve and studio share; None (error printed) when it
    cannot listen or its ring is taken."""
    from ..server import ServeConfig, Server
    resolve_token(args)
    config = ServeConfig(host=args.host, control_port=args.control_port, audio_port=args.audio_port,
                         tcp_port=None if args.tcp_port == 0 else args.tcp_port,
                         ring=None if args.ring == "none" else args.ring, lookahead=args.lookahead,
                         token=args.token, record=args.record, watch=not args.no_reload,
                         web_port=None if args.web_port == 0 else args.web_port,
                         parent_pid=args.parent_pid)
    try:
        config.check()
    except ValueError as e:
        error(str(e))
        return None
    import zmq

    from ..transport.shm import RingError, RingInUse, remove_stale_rings
    if config.ring:
        for path in remove_stale_rings():
            logging.getLogger("scorewright.serve").info("removed %s: a ring a killed server left", path)
    engine = open_map(args.map, args.seed, args.backend)
    try:
        server = Server(engine, config)
    except (RingInUse, RingError, ValueError) as e:
        error(str(e))
        return None
    except (zmq.ZMQError, OSError) as e:
        error(f"cannot listen on {config.host} ({e}); is another `scorewright serve` running? "
              "Choose other ports with --control-port, --audio-port and --tcp-port, or open its "
              "studio page with `scorewright studio --attach`")
        return None
    signal.signal(signal.SIGTERM, server.request_stop)
    signal.signal(signal.SIGINT, server.request_stop)
    return server


def cmd_serve(args: argparse.Namespace) -> int:
    server = start_server(args)
    if server is None:
        return 2
    server.run_forever()
    return 0


def cmd_studio(args: argparse.Namespace) -> int:
    if args.attach is not None:
        return attach(args.attach, args.no_browser)
    if args.map is None:
        error("give a map to audition (e.g. `scorewright studio demo`), or --attach to a running server")
        return 2
    if args.web_port == 0:
        error("the studio is its page: give it a port with --web-port (0 turns it off)")
        return 2
    args.map = str(editable_copy(args.map))
    server = start_server(args)
    if server is None:
        return 2
    web = server.transport("web")
    if web is None:
        error(f"the studio page cannot listen on port {args.web_port}; pick another with --web-port")
        server.stop()
        return 2
    url = web.url + (f"?token={args.token}" if args.token else "")
    say(f"Scorewright Studio: {url}", "bold")
    if not args.no_browser:
        webbrowser.open(url)
    server.run_forever()
    return 0


def editable_copy(map_arg: str) -> Path:
    """The map the studio edits: a path as given; a bundled map by name is copied (with the
    bundled motifs, includes and its event script) into ./NAME/ first, once, so saving never
    changes the installed package."""
    from ..statemap.load import bundled_map, resolve_map
    path = resolve_map(map_arg)
    bundled = bundled_map(map_arg)
    if path != bundled or not bundled.is_file():
        return path
    folder = Path(map_arg)
    copy = folder / bundled.name
    if copy.is_file():
        say(f"editing your copy of the bundled map '{map_arg}': {copy}")
        return copy
    folder.mkdir(exist_ok=True)
    shutil.copy(bundled, copy)
    for sub in ("motifs", "includes"):
        if (bundled.parent / sub).is_dir():
            shutil.copytree(bundled.parent / sub, folder / sub, dirs_exist_ok=True)
    script = bundled.parent / "scripts" / bundled.name
    if script.is_file():
        (folder / "scripts").mkdir(exist_ok=True)
        shutil.copy(script, folder / "scripts" / script.name)
    say(f"copied the bundled map '{map_arg}' to {copy}: the studio edits that copy")
    return copy


def attach(url: str, no_browser: bool) -> int:
    """Open the studio page of a running server (a game's), in attach mode: the page mirrors
    the game's state and overrides what the designer moves until released."""
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            r.read(64)
    except (urllib.error.URLError, OSError) as e:
        error(f"no studio page at {url} ({e}); is `scorewright serve` running (its page is on "
              "--web-port, 7710 by default)?")
        return 2
    page = url + ("&" if "?" in url else "?") + "attach=1"
    say(f"Scorewright Studio (attached): {page}", "bold")
    if not no_browser:
        webbrowser.open(page)
    return 0


def add_server_options(p: argparse.ArgumentParser, backends: list[str]) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help=f"address to bind; anything but loopback needs a token (--token or {TOKEN_ENV})")
    p.add_argument("--control-port", type=int, default=7700, help="ZMQ ROUTER port for game messages")
    p.add_argument("--audio-port", type=int, default=7701, help="ZMQ PUB port for audio, markers, telemetry")
    p.add_argument("--tcp-port", type=int, default=7702, help="framed-TCP port, both ways (0 = off)")
    p.add_argument("--web-port", type=int, default=7710, help="the studio page (0 = off)")
    p.add_argument("--ring", default="default", help="shared-memory ring name ('none' = off)")
    p.add_argument("--lookahead", type=int, default=3, help="frames generated ahead of playback (40 ms each)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the map's)")
    p.add_argument("--backend", choices=backends, default=None, help="override the map's backend")
    p.add_argument("--token", default=None, help="shared secret clients send in 'hello' "
                   "(required when --host is not a loopback address); when not given, the "
                   f"environment variable {TOKEN_ENV} is used if set, which other users cannot "
                   "read (they can read the command line)")
    p.add_argument("--record", metavar="FILE", default=None,
                   help="record every game message (replay: render MAP --events FILE)")
    p.add_argument("--no-reload", action="store_true", help="do not reload the map when it is edited")
    p.add_argument("--parent-pid", type=int, default=None, metavar="PID",
                   help="stop (cleanly, within a second) when process PID exits: engines that launch "
                        "the server pass their own id, so a crashed game leaves no server behind")


def add_parsers(sub, backends: list[str]) -> None:
    s = sub.add_parser("serve", help="run the middleware: control in, audio out")
    s.add_argument("map", help="state map file (or the name of a bundled map, e.g. demo)")
    add_server_options(s, backends)
    s.set_defaults(func=cmd_serve)

    st = sub.add_parser("studio", help="audition and edit a map live in the browser")
    st.add_argument("map", nargs="?", help="state map file (or the name of a bundled map, e.g. demo)")
    st.add_argument("--attach", nargs="?", const=STUDIO_URL, metavar="URL",
                    help=f"open the page of a running server instead (default {STUDIO_URL})")
    st.add_argument("--no-browser", action="store_true", help="print the page's address only")
    add_server_options(st, backends)
    st.set_defaults(func=cmd_studio)
