"""`scorewright serve`: the long-running middleware process."""

from __future__ import annotations

import argparse
import signal

from .output import error
from .render import open_map


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server import ServeConfig, Server
    config = ServeConfig(host=args.host, control_port=args.control_port, audio_port=args.audio_port,
                         tcp_port=None if args.tcp_port == 0 else args.tcp_port,
                         ring=None if args.ring == "none" else args.ring, lookahead=args.lookahead,
                         token=args.token, record=args.record, watch=not args.no_reload)
    try:
        config.check()
    except ValueError as e:
        error(str(e))
        return 2
    import zmq

    from ..transport.shm import RingError, RingInUse
    engine = open_map(args.map, args.seed, args.backend)
    try:
        server = Server(engine, config)
    except (RingInUse, RingError) as e:
        error(str(e))
        return 2
    except (zmq.ZMQError, OSError) as e:
        error(f"cannot listen on {config.host} ({e}); is another `scorewright serve` running? "
              "Choose other ports with --control-port, --audio-port and --tcp-port")
        return 2
    signal.signal(signal.SIGTERM, server.request_stop)
    signal.signal(signal.SIGINT, server.request_stop)
    server.run_forever()
    return 0


def add_parsers(sub, backends: list[str]) -> None:
    s = sub.add_parser("serve", help="run the middleware: control in, audio out")
    s.add_argument("map", help="state map file (or the name of a bundled map, e.g. demo)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind; anything but loopback needs --token")
    s.add_argument("--control-port", type=int, default=7700, help="ZMQ ROUTER port for game messages")
    s.add_argument("--audio-port", type=int, default=7701, help="ZMQ PUB port for audio, markers, telemetry")
    s.add_argument("--tcp-port", type=int, default=7702, help="framed-TCP port, both ways (0 = off)")
    s.add_argument("--ring", default="default", help="shared-memory ring name ('none' = off)")
    s.add_argument("--lookahead", type=int, default=3, help="frames generated ahead of playback (40 ms each)")
    s.add_argument("--seed", type=int, default=None, help="random seed (default: the map's)")
    s.add_argument("--backend", choices=backends, default=None, help="override the map's backend")
    s.add_argument("--token", default=None, help="shared secret clients send in 'hello' "
                   "(required when --host is not a loopback address)")
    s.add_argument("--record", metavar="FILE", default=None,
                   help="record every game message (replay: render MAP --events FILE)")
    s.add_argument("--no-reload", action="store_true", help="do not reload the map when it is edited")
    s.set_defaults(func=cmd_serve)
