"""Transports: ZMQ (ROUTER + PUB), framed TCP, and the shared-memory ring."""

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for servers started by tests, benches, games)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
