"""Transports: ZMQ (ROUTER + PUB), framed TCP, the shared-memory ring, the studio's WebSocket."""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _below_ephemeral() -> tuple[int, int] | None:
    """Ports under the range the OS hands to outgoing connections (Linux), or None."""
    try:
        low = int(EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return (10000, low - 1) if low > 12000 else None


def free_ports(n: int = 1, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct TCP ports nothing listens on right now (for servers started by tests,
    benches, games). On Linux they are taken from below the ephemeral range, so an outgoing
    connection made before the server binds cannot take one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    span = _below_ephemeral()
    held: list[socket.socket] = []
    try:
        while len(held) < n:
            s = socket.socket(family)
            try:
                s.bind((host, random.randint(*span) if span else 0))
            except OSError:
                s.close()
                continue
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One port as free_ports gives them."""
    return free_ports(1, host)[0]
