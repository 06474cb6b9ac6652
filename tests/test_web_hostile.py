"""The studio's web transport against careless and hostile input: replies the server makes are
never held to the limits meant for what it receives (a big map, a long problem list, a broken
edit while a page is open), a page must say hello with the token quickly and briefly, requests
must name this server (no DNS rebinding), and downloads need the token, stay bounded and
never answer a strange name with a traceback."""

from __future__ import annotations

import contextlib
import http.client
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from scorewright.transport import web

from .conftest import MAPS


@contextlib.contextmanager
def page(srv, token: str | None = None):
    """A page's socket (as a non-browser client: no Origin), past its hello."""
    with connect(f"ws://127.0.0.1:{srv.web}/ws", open_timeout=10, max_size=None) as ws:
        ws.send(json.dumps({"type": "hello", "id": 1, "client": "test page",
                            **({"token": token} if token else {})}))
        assert json.loads(ws.recv(timeout=10))["type"] == "status"
        yield ws


def answer(ws, msg_id: int, timeout: float = 20.0) -> dict:
    """The reply to `msg_id`, past any frames and pushes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = ws.recv(timeout=timeout)
        if isinstance(m, str) and (obj := json.loads(m)).get("id") == msg_id:
            return obj
    raise TimeoutError(msg_id)


def get(srv, path: str, host: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.web, timeout=10)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{srv.web}")
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def big_map(params: int) -> str:
    lines = ["version: 1", "name: big", "backend: synth", "styles:", "  calm: {prompt: calm piano}",
             "params:"] + [f"  p{i}: {{min: 0, max: 1}}" for i in range(params)]
    return "\n".join(lines) + "\n"


def test_big_replies_reach_the_page_and_every_client_is_still_answered(serve, write_map):
    """300 params make a 300-entry status; 5000 problems a 1.3 MB validate reply: both go out,
    and the dispatcher answers a game afterwards."""
    srv = serve(write_map(big_map(300)))
    game = srv.wait_ready()
    with page(srv) as ws:
        ws.send(json.dumps({"type": "status", "id": 2}))
        assert len(answer(ws, 2)["params"]) == 300
        ws.send(json.dumps({"type": "studio.validate", "id": 3, "text": "version: 1\n" + "yes: 1\n" * 5000}))
        reply = answer(ws, 3, timeout=60)
        assert reply["type"] in ("studio.problems", "error"), reply
    assert game.ping()["type"] == "ok"
    game.close()


def test_a_broken_edit_with_a_page_open_keeps_the_server_up(serve, write_map):
    path = write_map((MAPS / "demo.yaml").read_text())
    srv = serve(path)
    game = srv.wait_ready()
    with page(srv) as ws:
        path.write_text("version: 1\n" + "yes: 1\n" * 5000)          # thousands of problems
        deadline = time.monotonic() + 20
        pushed = None
        while pushed is None and time.monotonic() < deadline:
            m = ws.recv(timeout=20)
            if isinstance(m, str) and json.loads(m).get("type") == "studio.file":
                pushed = json.loads(m)
    assert pushed is not None and pushed["problems"]
    assert srv.proc.poll() is None and game.ping()["type"] == "ok"
    game.close()


def test_with_a_token_a_page_says_hello_soon_and_briefly(serve):
    srv = serve(extra=["--token", "k"])
    srv.wait_ready(token="k").close()
    url = f"ws://127.0.0.1:{srv.web}/ws"
    with connect(url, open_timeout=10, max_size=None) as ws:          # big before hello: closed
        ws.send(json.dumps({"type": "ping", "pad": "x" * 100_000}))
        assert json.loads(ws.recv(timeout=10))["code"] == "too_large"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    with connect(url, open_timeout=10) as ws:                         # small before hello: answered
        ws.send(json.dumps({"type": "ping", "id": 5}))
        assert json.loads(ws.recv(timeout=10))["code"] == "unauthorized"
    with page(srv, token="k"):
        pass


def test_an_idle_socket_without_hello_is_closed():
    """With a token, a socket that never says hello holds its slot only hello_timeout_s."""
    from scorewright.transport.base import Budgets, Inbox
    budgets = Budgets(hello_timeout_s=0.5)
    t = web.WebTransport("127.0.0.1", 0, budgets, token="k")
    t.start(Inbox(budgets))
    try:
        with connect(t.url.replace("http", "ws") + "ws", open_timeout=10) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == 1008
    finally:
        t.stop()


def test_requests_must_name_this_server(serve):
    srv = serve()
    srv.wait_ready().close()
    assert get(srv, "/")[0] == 200
    assert get(srv, "/", host=f"localhost:{srv.web}")[0] == 200
    status, body = get(srv, "/", host=f"attacker.example:{srv.web}")
    assert status == 421 and b"127.0.0.1" in body


def test_downloads_need_the_token_and_stay_bounded(serve, write_map, monkeypatch):
    path = write_map((MAPS / "demo.yaml").read_text())
    takes = path.parent / "studio-takes"
    takes.mkdir()
    (takes / "take-1.wav").write_bytes(b"RIFF" + bytes(1000))
    srv = serve(path, extra=["--token", "k"])
    srv.wait_ready(token="k").close()
    assert get(srv, "/files/take-1.wav")[0] == 403
    assert get(srv, "/files/take-1.wav?token=wrong")[0] == 403
    status, body = get(srv, "/files/take-1.wav?token=k")
    assert status == 200 and body.startswith(b"RIFF") and len(body) == 1004
    for strange in ("/files/%00?token=k", "/%00", "/files/..%2f..%2fetc%2fpasswd?token=k", "/files/?token=k"):
        assert get(srv, strange)[0] == 404, strange
    assert "Traceback" not in srv.stop()


def test_a_download_over_the_cap_is_refused_with_where_to_find_it(tmp_path, monkeypatch):
    from scorewright.transport.base import Budgets, Inbox
    monkeypatch.setattr(web, "MAX_DOWNLOAD_BYTES", 100)
    (tmp_path / "big.wav").write_bytes(bytes(101))
    t = web.WebTransport("127.0.0.1", 0, Budgets(), files=tmp_path)
    t.start(Inbox(Budgets()))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", t.sock.getsockname()[1], timeout=10)
        conn.request("GET", "/files/big.wav")
        r = conn.getresponse()
        assert r.status == 413 and str(tmp_path / "big.wav") in r.read().decode()
    finally:
        t.stop()
