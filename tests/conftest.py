import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from scorewright.client import wait_for_server
from scorewright.transport import free_ports

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

ROOT = Path(__file__).resolve().parents[1]
MAPS = ROOT / "middleware" / "scorewright" / "state_maps"


@pytest.fixture(scope="session")
def synth():
    """One SynthBackend for the session (loading the style model takes about a second)."""
    from scorewright.backends.synth.backend import SynthBackend
    return SynthBackend()


@pytest.fixture
def write_map(tmp_path):
    """Write YAML text to a map file in a temp folder and return its path."""
    def write(text: str, name: str = "map.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


class ServeProcess:
    def __init__(self, map_path: str, extra: list[str] = (), env: dict[str, str] | None = None):
        self.control, self.audio, self.tcp, self.web = free_ports(4)
        self.ring = f"test-{uuid.uuid4().hex[:8]}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scorewright.cli", "serve", str(map_path),
             "--control-port", str(self.control), "--audio-port", str(self.audio),
             "--tcp-port", str(self.tcp), "--web-port", str(self.web), "--ring", self.ring, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "COLUMNS": "200", **(env or {})})

    @property
    def control_addr(self) -> str:
        return f"tcp://127.0.0.1:{self.control}"

    @property
    def audio_addr(self) -> str:
        return f"tcp://127.0.0.1:{self.audio}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web}/"

    def wait_ready(self, timeout: float = 30.0, **connect_args):
        try:
            return wait_for_server(self.control_addr, within=timeout, process=self.proc, **connect_args)
        except ConnectionError:
            if self.proc.poll() is not None:
                raise RuntimeError("serve exited early:\n" + self.proc.stdout.read()) from None
            raise

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


@pytest.fixture
def serve():
    started: list[ServeProcess] = []

    def start(map_path=MAPS / "demo.yaml", extra=(), env=None):
        s = ServeProcess(str(map_path), list(extra), env)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()
