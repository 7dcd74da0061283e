"""The preloaded trainer launcher: one process that imports torch, transformers, peft, accelerate
and diffusers once, then forks a trainer for each job. On a 2-core CPU a trainer spends 3–5 s
importing these before its first step.

    python -m engines.training.preloaded      (the studio starts it; requests on stdin)

Each trainer it starts is `python -m <module> --run-dir DIR` in every way the studio sees: its own
session and process group, the job's working folder and environment, train.log as its stdout and
stderr, the module run as `__main__`, the exit code and traceback of a plain interpreter. Only its
command line (in `ps`) is this launcher's: the studio tells its jobs by their working folder.

What these libraries read from the environment when imported (HF_HUB_OFFLINE, HF_HOME, OMP_…)
is the job's: the studio starts a launcher per such environment, in that environment
(studio/services/job_launcher.py), and OMP_NUM_THREADS is applied again in each trainer.

Written here rather than taken from `multiprocessing`'s forkserver: that one re-imports the
parent's `__main__` in every child (the studio's launch.py, and gradio with it), keeps the child in
its own session, and reports an exit code only to the process that asked for it.

Protocol, one JSON object per line. On stdin, a request:
    {"module": "engines.text.train", "args": ["--run-dir", DIR], "cwd": DIR, "env": {...}, "log": PATH}
On stdout, {"ready": true} once the imports are done; for each request in order {"pid": N} (or
{"error": "..."}); and {"exited": N, "rc": RC} when that trainer ends (RC: its exit code, or -S when
signal S killed it). When stdin closes (the studio stopped or died) the launcher exits and the
trainers go on, as they would have had the studio started them itself.
"""

from __future__ import annotations

import json
import os
import runpy
import select
import sys
from typing import Any

PRELOAD = ("numpy", "torch", "torch._dynamo", "torch.distributed.tensor", "scipy.optimize", "safetensors.torch",
           "PIL.Image", "transformers", "transformers.modeling_utils", "peft", "accelerate", "diffusers.models")
REAP_EVERY_S = 0.2


def main() -> None:
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # not installed, or broken: the trainer that needs it will say so itself
            pass
    out = os.fdopen(os.dup(1), "w", buffering=1)  # replies; fd 1 itself is not kept open in trainers
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    send(out, {"ready": True})
    children: set[int] = set()
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], REAP_EVERY_S)
        if readable:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return  # the studio is gone: leave the trainers running
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                try:
                    request = json.loads(line)
                except ValueError:
                    send(out, {"error": "a request must be one JSON object per line"})
                    continue
                pid = start(request, out)
                if pid:
                    children.add(pid)
        reap(children, out)


def send(out: Any, message: dict[str, Any]) -> None:
    try:
        out.write(json.dumps(message) + "\n")
    except BrokenPipeError:  # the studio is gone
        raise SystemExit(0) from None


def start(request: dict[str, Any], out: Any) -> int | None:
    """Fork a trainer for `request`; tell the studio its pid (or why not)."""
    if not (isinstance(request, dict) and isinstance(request.get("module"), str)
            and isinstance(request.get("args"), list) and isinstance(request.get("cwd"), str)
            and isinstance(request.get("env"), dict)):
        send(out, {"error": "a request names module, args, cwd, env and log"})
        return None
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except (OSError, KeyError, TypeError) as exc:
        send(out, {"error": f"cannot open the log: {exc}"})
        return None
    pid = os.fork()
    if pid == 0:  # the trainer: never returns into the loop above
        out.close()
        become_trainer(request, log)
    os.close(log)
    send(out, {"pid": pid})
    return pid


def become_trainer(request: dict[str, Any], log: int) -> None:
    os.setsid()  # its own session: the studio signals the job's whole process group by its pid
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for entry in reversed(os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        if entry and entry not in sys.path:
            sys.path.insert(0, entry)
    # stdout and stderr as PYTHONUNBUFFERED gives a fresh interpreter: each write reaches train.log
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1, encoding="utf-8", closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace",
                                       closefd=False)  # fmt: skip
    sys.stdin = sys.__stdin__ = open(0, closefd=False)
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:  # torch read it when this launcher imported it
        import torch

        torch.set_num_threads(int(threads))
    sys.argv = [request["module"], *request["args"]]
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    sys.exit(0)  # the module returned: a plain interpreter would exit 0 (exceptions exit as they do there)


def reap(children: set[int], out: Any) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        send(out, {"exited": pid, "rc": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
