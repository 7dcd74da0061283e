"""The product around the engines: what a REST call adds to the engine's own time, how long
`launch.py` takes to answer on `/`, and how long a fresh studio's first text answer and first image take
(the models load on that first request, as they do for a user's first click)."""

from __future__ import annotations

import json
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
    if names & {"service.startup_s", "service.first_text_s", "service.first_image_s"}:
        figures.extend(f for f in startup(ctx) if f.name in names)
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


def _post(url: str, body: dict) -> float:
    """Seconds for one JSON POST that must answer 200."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310 - our own loopback server
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{url} answered {r.status}")
    return time.perf_counter() - t0


def startup(ctx: Context) -> list[Figure]:
    """`python launch.py --offline` as a subprocess, a fresh data dir each run: seconds from start to the
    first 200 on `/`; then the first text answer and the first image, sent at once, with the Text and Image
    tabs' defaults and the default (starter) models. Those load before the port opens (Studio.warm_up), so
    their load is in startup_s, not in the first answer."""
    times: dict[str, list[float]] = {"startup": [], "text": [], "image": []}
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
            if ok:
                api = f"http://127.0.0.1:{port}/api/v1"
                times["text"].append(_post(f"{api}/text/generate", {"prompt": PROMPT, "max_new_tokens": 64,
                                                                     "temperature": 0.8, "seed": i}))
                times["image"].append(_post(f"{api}/image/generate",
                                            {"prompt": "a red circle on a blue background", "seed": i}))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not ok:
            why = "launch.py never answered 200 on / within 120 s"
            return [Figure(n, None, "s", note=why) for n in ("service.startup_s", "service.first_text_s",
                                                             "service.first_image_s")]
        times["startup"].append(elapsed)
    return [
        Figure("service.startup_s", median(times["startup"]), "s", None, None,
               "python launch.py --offline (fresh data dir) until the first 200 on /", {"runs": times["startup"]}),
        Figure("service.first_text_s", median(times["text"]), "s", None, None,
               "then at once the first POST /api/v1/text/generate (default model, 64 new tokens, "
               "temperature 0.8)", {"runs": times["text"]}),
        Figure("service.first_image_s", median(times["image"]), "s", None, None,
               "then at once the first POST /api/v1/image/generate (default model, its default size "
               "and steps)", {"runs": times["image"]}),
    ]
