"""The product around the engines: what a REST call adds to the engine's own time, and how long
`launch.py` takes to answer on `/`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

from bench import fixtures
from bench.core import REPO, Context, Figure, median

PROMPT = "The lamp no longer needed her; a small motor turned it now, and"


def run(ctx: Context, names: set[str]) -> list[Figure]:
    figures = []
    if "service.overhead_ms" in names:
        figures.append(overhead(ctx))
    if "service.startup_s" in names:
        figures.append(startup(ctx))
    return figures


def overhead(ctx: Context) -> Figure:
    """POST /api/v1/text/generate in-process (TestClient): request latency minus the engine's `elapsed_s`."""
    from fastapi.testclient import TestClient

    from studio.app import build_app
    from studio.config import StudioConfig

    fixtures.starter(ctx, "text")
    config = StudioConfig(data_dir=ctx.data_dir, offline=True, device=ctx.device)
    body = {"prompt": PROMPT, "max_new_tokens": 8, "seed": 1}
    overheads, latencies = [], []
    with TestClient(build_app(config, ui=False)) as client:
        for i in range(3 + 10 * ctx.reps):  # the first calls load the model and warm up
            t0 = time.perf_counter()
            r = client.post("/api/v1/text/generate", json=body)
            latency = time.perf_counter() - t0
            r.raise_for_status()
            if i >= 3:
                latencies.append(latency * 1000)
                overheads.append((latency - r.json()["elapsed_s"]) * 1000)
    return Figure("service.overhead_ms", median(overheads), "ms", None, None,
                  "POST /api/v1/text/generate (starter, 8 tokens) latency minus the engine's elapsed_s; "
                  "validation, queueing, storing the output, JSON",
                  {"latency_ms": median(latencies), "overhead_ms_runs": overheads})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _first_200(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - our own loopback server
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def startup(ctx: Context) -> Figure:
    """`python launch.py --offline` as a subprocess: seconds from start to the first 200 on `/`."""
    times = []
    for i in range(2 if ctx.quick else 3):
        port = _free_port()
        data_dir = ctx.work_dir / f"startup-{i}"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(REPO / "launch.py"), "--offline", "--port", str(port),
                                 "--data-dir", str(data_dir)], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ok = _first_200(f"http://127.0.0.1:{port}/", proc, timeout=120)
            elapsed = time.perf_counter() - t0
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not ok:
            return Figure("service.startup_s", None, "s", note="launch.py never answered 200 on / within 120 s")
        times.append(elapsed)
    return Figure("service.startup_s", median(times), "s", None, None,
                  "python launch.py --offline (fresh data dir) until the first 200 on /", {"runs": times})
