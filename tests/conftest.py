"""Shared fixtures: a studio on a temp data dir, offline, on the tiny starter models."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tiny random-weight starters are the default where meaning doesn't matter (fast); tests of meaning
# name the trained starters (starter/gpt2-stories, starter/sd-shapes) explicitly.
os.environ.setdefault("AIGC_STUDIO_TINY_STARTERS", "1")

REPO = Path(__file__).resolve().parents[1]


def cpu_share() -> int:
    """The cores this test process may use: all of them, or its share when pytest-xdist runs the
    suite in several workers (`make test` does). Torch in every worker, and every trainer and studio
    a worker starts, keeps to that many threads: two processes each spinning two OpenMP threads on
    two cores run many times slower than each with one."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    return max(1, (os.cpu_count() or 1) // workers)


if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = str(cpu_share())
    if "torch" in sys.modules:  # read at import: set it again if a plugin imported torch first
        sys.modules["torch"].set_num_threads(cpu_share())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def config(request, tmp_path):
    """A studio's config. With STUDIO_TEST_DATABASE=postgres every test that builds a studio from it
    runs on a fresh PostgreSQL database instead of SQLite (`make test-postgres`)."""
    from studio.config import StudioConfig

    database_url = None
    if os.environ.get("STUDIO_TEST_DATABASE") == "postgres":
        database_url = request.getfixturevalue("postgres").new_database()
    return StudioConfig(data_dir=tmp_path / "data", offline=True, database_url=database_url)


@pytest.fixture
def client(config):
    """An in-process client for the whole app (API + UI), lifespan included."""
    from fastapi.testclient import TestClient

    from studio.app import build_app

    app = build_app(config)
    with TestClient(app) as c:
        c.studio = app.state.studio
        yield c


@pytest.fixture
def api_client(config):
    """Faster: the app without the Gradio UI."""
    from fastapi.testclient import TestClient

    from studio.app import build_app

    app = build_app(config, ui=False)
    with TestClient(app) as c:
        c.studio = app.state.studio
        yield c


class LiveStudio:
    def __init__(self, proc: subprocess.Popen, port: int, data_dir: Path, log: Path):
        self.proc, self.port, self.data_dir, self.log = proc, port, data_dir, log
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = 60) -> LiveStudio:
        """Wait until the studio answers its health check (started with `wait=False`: several start at once)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"studio exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"studio did not start in {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_studio(args: list[str], data_dir: Path, *, env: dict | None = None, cwd: Path | None = None,
                 wait: bool = True, timeout: float = 60) -> LiveStudio:
    """Run `launch.py` as a real server in a child process."""
    port = free_port()
    log = data_dir.parent / f"studio-{port}.log"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(REPO / "launch.py"), "--port", str(port), "--data-dir", str(data_dir), *args]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=cwd or REPO)
    live = LiveStudio(proc, port, data_dir, log)
    if wait:
        live.wait_ready(timeout)
    return live


@pytest.fixture
def live_studio(tmp_path):
    started: list[LiveStudio] = []

    def start(*args: str, **kw) -> LiveStudio:
        live = start_studio(list(args), kw.pop("data_dir", tmp_path / "data"), **kw)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the whole run (tests/postgres.py); each test takes its own database."""
    from tests.postgres import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()
