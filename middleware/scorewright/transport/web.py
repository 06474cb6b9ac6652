"""The web transport: the studio page over HTTP and its live connection over a WebSocket, on
one port (default 127.0.0.1:7710), with the `websockets` library on an asyncio loop of its own.

Messages from the page are JSON text (the same messages as the wire, plus the studio's own);
replies and pushes go back as JSON. Each published frame goes to subscribed pages as a JSON
`frame` (position, markers, the director's snapshot) followed by a binary message: an 8-byte
little-endian float64 stream position, then the frame's float32 stereo samples.

Only pages served from this server may open the WebSocket (the Origin header is checked: a
site in another tab cannot drive the music or write the map); with a token, a page must say
hello with it first, as every client must. A page that cannot keep up loses audio, not the
server's memory (Budgets).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import mimetypes
import socket
import struct
import threading
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import msgpack
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..protocol import error, printable, unpack_output
from .base import Budgets, Inbox, Outgoing, Peer, Transport

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "studio" / "static"
POS = struct.Struct("<d")
MAX_DOWNLOAD_BYTES = 256 << 20    # a take's WAV (~23 min of 16-bit stereo); larger: copy it from disk
DOWNLOADS_AT_ONCE = 2             # downloads being read or sent; more wait for one to finish


class WebPeer(Peer):
    transport = "web"

    def __init__(self, owner: WebTransport, ws: ServerConnection) -> None:
        self.owner, self.ws = owner, ws
        self.authorized = owner.token is None
        self.dropped_audio = 0

    def describe(self) -> str:
        host, port = self.ws.remote_address[:2]
        return f"studio page {host}:{port}" + (f" ({printable(self.client_name, 40)})"
                                               if self.client_name else "")

    def reply(self, payload: bytes) -> None:
        self.owner.send_text(self, json.dumps(unpack_output(payload), default=repr))

    @property
    def backlog(self) -> int:
        transport = self.ws.transport
        return transport.get_write_buffer_size() if transport is not None else 0


class WebTransport(Transport):
    name = "web"

    def __init__(self, host: str, port: int, budgets: Budgets, token: str | None = None,
                 files: Path | None = None) -> None:
        self.budgets, self.token, self.files = budgets, token, files
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.create_server((host, port), family=family, reuse_port=False)
        port = self.sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/"
        loopback = host in ("127.0.0.1", "::1", "localhost")
        names = {"127.0.0.1", "localhost", "[::1]", shown} if loopback else {shown}
        self.origins = [f"http://{n}:{port}" for n in sorted(names)] + [None]   # None: not a browser
        # on loopback, a request must name this server: another site's name that resolves to
        # 127.0.0.1 (DNS rebinding) is refused
        self.hosts = {f"{n}:{port}" for n in names} if loopback else None
        self.peers: list[WebPeer] = []
        self.refused = self.disconnected = 0
        self.loop = asyncio.new_event_loop()
        self._inbox: Inbox | None = None
        self._server = None
        self._stopped = asyncio.Event()
        self._downloads = asyncio.Semaphore(DOWNLOADS_AT_ONCE)
        self._thread = threading.Thread(target=self._run, name="sw-web", daemon=True)

    def describe(self) -> str:
        return f"studio {self.url}"

    # -- lifecycle --
    def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=3)
        else:
            self.sock.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        async with serve(self._session, sock=self.sock, origins=self.origins, compression=None,
                         process_request=self._http, max_size=self.budgets.max_message_bytes,
                         max_queue=16, logger=log) as server:
            self._server = server
            await self._stopped.wait()

    # -- HTTP: the page, its files, and downloads from the map's folder --
    async def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.hosts is not None and request.headers.get("Host", "").lower() not in self.hosts:
            return _plain(HTTPStatus.MISDIRECTED_REQUEST, "this server answers to "
                          f"{' or '.join(sorted(self.hosts))} only\n")
        url = urlsplit(request.path)
        path = unquote(url.path)
        if path == "/ws":
            return None                          # the WebSocket handshake (Origin checked)
        if path == "/":
            path = "/index.html"
        if path.startswith("/files/") and self.files is not None:
            given = parse_qs(url.query).get("token", [""])[0]
            if self.token is not None and not hmac.compare_digest(given.encode(), self.token.encode()):
                return _plain(HTTPStatus.FORBIDDEN, "add ?token=<the server's token> to the address\n")
            return await self._download(connection, path[len("/files/"):])
        target = _inside(STATIC, path.lstrip("/"))
        return _plain(HTTPStatus.NOT_FOUND, "not found\n") if target is None else _file(target)

    async def _download(self, connection: ServerConnection, rel: str) -> Response:
        """A take or its WAV: read off the loop, at most DOWNLOADS_AT_ONCE held at a time (each
        until its connection closes), none over MAX_DOWNLOAD_BYTES."""
        target = _inside(self.files, rel)
        if target is None:
            return _plain(HTTPStatus.NOT_FOUND, "not found\n")
        if target.stat().st_size > MAX_DOWNLOAD_BYTES:
            return _plain(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                          f"{target.name} is over {MAX_DOWNLOAD_BYTES >> 20} MiB: copy it from {target}\n")
        if self._downloads.locked():
            return _plain(HTTPStatus.SERVICE_UNAVAILABLE, "other downloads are running; try again\n")
        await self._downloads.acquire()
        try:
            response = await asyncio.to_thread(_file, target, True)
        except BaseException:
            self._downloads.release()
            raise
        self.loop.create_task(_release_when_closed(connection, self._downloads))
        return response

    # -- a page's connection --
    async def _session(self, ws: ServerConnection) -> None:
        if len(self.peers) >= self.budgets.max_clients:
            self.refused += 1
            await ws.send(json.dumps(error("too_many_clients", "too many studio pages are open")))
            return
        peer = WebPeer(self, ws)
        self.peers.append(peer)
        log.info("%s connected", peer.describe())
        if not peer.authorized:
            self.loop.call_later(self.budgets.hello_timeout_s, self._hello_overdue, peer)
        try:
            async for message in ws:
                self._receive(peer, message)
        except ConnectionClosed:
            pass
        finally:
            self.peers.remove(peer)
            self.disconnected += 1

    def _hello_overdue(self, peer: WebPeer) -> None:
        if not peer.authorized and peer in self.peers:
            log.info("%s closed: no hello with the token within %g s", peer.describe(),
                     self.budgets.hello_timeout_s)
            self.loop.create_task(peer.ws.close(1008, "no hello with the token"))

    def _receive(self, peer: WebPeer, message: str | bytes) -> None:
        if not peer.authorized and len(message) > self.budgets.unauthorized_message_bytes:
            limit = self.budgets.unauthorized_message_bytes
            self.send_text(peer, json.dumps(error("too_large", f"say hello with the token first (at most "
                                                  f"{limit} bytes before it)")))
            self.loop.create_task(peer.ws.close(1009, "too large before hello"))
            return
        if isinstance(message, bytes):
            self.send_text(peer, json.dumps(error("bad_message", "send JSON text messages")))
            return
        try:
            obj = json.loads(message)
            payload = msgpack.packb(obj, use_bin_type=True)
        except (ValueError, TypeError, OverflowError, RecursionError) as e:
            self.send_text(peer, json.dumps(error("bad_message", f"not a JSON message: {e}")))
            return
        if self._inbox is not None:
            self._inbox.put(peer, payload)

    # -- out --
    def send_text(self, peer: WebPeer, text: str) -> None:
        """Any thread: a reply or push; a page whose unread data passes its budget is closed."""
        self.loop.call_soon_threadsafe(self._send_now, peer, text)

    def _send_now(self, peer: WebPeer, text: str) -> None:
        if peer.backlog > self.budgets.client_backlog_bytes:
            log.info("%s closed: it stopped reading", peer.describe())
            self.loop.create_task(peer.ws.close(1008, "not reading"))
            return
        broadcast([peer.ws], text)

    def publish(self, out: Outgoing) -> None:
        if any(p.want_audio for p in self.peers):
            self.loop.call_soon_threadsafe(self._publish_now, out)

    def _publish_now(self, out: Outgoing) -> None:
        info = json.dumps({"type": "frame", "seq": out.seq, "pos": out.header["pos"],
                           "due": out.header["due"], "markers": [unpack_output(m) for m in out.markers],
                           "inspect": out.inspection,
                           "telemetry": unpack_output(out.telemetry) if out.telemetry else None})
        audio = POS.pack(out.header["pos"]) + out.pcm_bytes
        half, total = self.budgets.client_backlog_bytes // 2, self.budgets.total_backlog_bytes
        for peer in list(self.peers):
            if not (peer.want_audio and peer.authorized):
                continue
            if peer.backlog > half or sum(p.backlog for p in self.peers) > total:
                peer.dropped_audio += 1
                continue
            broadcast([peer.ws], info)
            broadcast([peer.ws], audio)

    def push(self, payload: bytes) -> None:
        for peer in list(self.peers):
            if peer.authorized:
                peer.reply(payload)

    def clients(self) -> int:
        return len(self.peers)

    def wants_inspection(self) -> bool:
        return any(p.want_audio for p in self.peers)

    def stats(self) -> dict[str, Any]:
        return {"clients": len(self.peers), "refused": self.refused, "disconnected": self.disconnected,
                "dropped_audio": sum(p.dropped_audio for p in self.peers), "url": self.url}


def _file(target: Path, download: bool = False) -> Response:
    """The file at `target` (found by _inside) as a response."""
    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix == ".js":
        kind = "text/javascript"
    headers = [("Content-Type", kind), ("Cache-Control", "no-cache")]
    if download:
        headers.append(("Content-Disposition", f'attachment; filename="{target.name}"'))
    return Response(HTTPStatus.OK, "OK", Headers(headers), target.read_bytes())


def _plain(status: HTTPStatus, text: str) -> Response:
    return Response(status, status.phrase, Headers([("Content-Type", "text/plain")]), text.encode())


def _inside(root: Path, rel: str) -> Path | None:
    """The regular file `rel` names inside `root`, or None (outside it, missing, or a name no
    file can have, such as one with a NUL byte)."""
    try:
        target = (root / rel).resolve()
        return target if target.is_relative_to(root.resolve()) and target.is_file() else None
    except (OSError, ValueError):
        return None


async def _release_when_closed(connection: ServerConnection, slots: asyncio.Semaphore) -> None:
    try:
        await connection.wait_closed()
    finally:
        slots.release()
