"""Starting a one-process trainer through the preloaded launcher (engines/training/preloaded.py), so
a job skips the seconds a fresh interpreter spends importing torch, transformers and diffusers.

One launcher per import environment (the variables those libraries read when imported: HF_*,
TRANSFORMERS_*, OMP_*, …; the studio's jobs normally share one), shared by every job runner in the
process, started by the first job in that environment, which waits for its imports and is the
first it forks. A job whose launcher is not ready within READY_WAIT_S, or where one cannot be used
(not Linux, a GPU job, several processes, a launcher that died, more environments than
MAX_LAUNCHERS), starts as a plain child process, as jobs always did. The handle a launcher
gives back answers like `subprocess.Popen` for what the runner asks: `pid`, `poll()`, `returncode`.

`STUDIO_PRELOAD_TRAINERS=0` turns it off (every job a fresh interpreter).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from studio.services.job_processes import group_alive

log = logging.getLogger("studio.jobs")

IMPORT_ENVIRONMENT = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "DIFFUSERS_", "PEFT_", "ACCELERATE_", "TORCH",
                      "PYTORCH_", "CUDA_", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "TOKENIZERS_", "XDG_", "HOME",
                      "PYTHON")  # fmt: skip
READY_WAIT_S = 30.0  # how long a job waits for its launcher's imports before starting plainly
MAX_LAUNCHERS = 6  # environments with a launcher of their own (~400 MB each); jobs in any other start plainly
LOST_RC = 1  # the exit code of a trainer whose launcher died before telling it (result.json still says)
REPLY_TIMEOUT_S = 10.0


class ForkedTrainer:
    """A trainer forked by the launcher: the parts of `subprocess.Popen` the job runner uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = threading.Event()
        self._orphaned = False  # the launcher died: only /proc can tell whether it still runs

    def poll(self) -> int | None:
        if self.returncode is None and self._orphaned and not group_alive(self.pid):
            self._set(LOST_RC)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        self._exited.wait(timeout)
        return self.poll()

    def _set(self, rc: int) -> None:
        if self.returncode is None:
            self.returncode = rc
        self._exited.set()


class PreloadedLauncher:
    """One launcher process, started in `env` (the environment of the jobs it will fork)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._ready = threading.Event()
        self._settled = threading.Event()  # ready, or it never will be
        self._dead = False
        self._replies: list[dict[str, Any]] = []
        self._replied = threading.Condition(self._lock)
        self._trainers: dict[int, ForkedTrainer] = {}
        self._early: dict[int, int] = {}  # exit codes that arrived before their pid was handed out

    def warm(self) -> None:
        """Start the launcher in the background (it imports for a few seconds before it is ready)."""
        with self._lock:
            if self._proc is not None or self._dead:
                return
            if not enabled(self.env or os.environ):  # never will be ready: nobody waits for it
                self._dead = True
                self._settled.set()
                return
            env = dict(self.env if self.env is not None else os.environ)
            root = str(Path(__file__).resolve().parents[2])  # so `-m engines…` imports from any folder
            paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
            env["PYTHONPATH"] = os.pathsep.join(paths if root in paths else [root, *paths])
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "engines.training.preloaded"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                    start_new_session=True, env=env,
                )  # fmt: skip
            except OSError as exc:
                log.warning("the preloaded trainer launcher did not start (%s): jobs start plainly", exc)
                self._dead = True
                self._settled.set()
                return
        threading.Thread(target=self._read, args=(self._proc,), name="trainer-launcher", daemon=True).start()

    def wait_ready(self, timeout: float) -> bool:
        """Whether the launcher is ready to fork jobs, waiting up to `timeout` seconds for its imports."""
        self._settled.wait(timeout)
        return self._ready.is_set()

    def start(self, cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> ForkedTrainer | None:
        """Fork `cmd` (`python -m <module> ARGS…`) from the launcher; None when it cannot be used now."""
        if len(cmd) < 3 or cmd[0] != sys.executable or cmd[1] != "-m" or not self._ready.is_set():
            return None
        request = {"module": cmd[2], "args": cmd[3:], "cwd": str(cwd), "env": env, "log": str(log_path)}
        with self._lock:
            if self._dead or self._proc is None or self._proc.stdin is None:
                return None
            self._replies.clear()
            try:
                self._proc.stdin.write((json.dumps(request) + "\n").encode())
                self._proc.stdin.flush()
            except OSError:
                self._dead = True
                return None
            if not self._replied.wait_for(lambda: self._replies or self._dead, REPLY_TIMEOUT_S):
                log.warning("the preloaded trainer launcher did not answer: jobs start plainly from now on")
                self._dead = True
                return None
            if self._dead or "pid" not in self._replies[0]:
                log.warning("the preloaded trainer launcher could not start a job: %s",
                            self._replies[0].get("error") if self._replies else "it stopped")
                return None
            trainer = ForkedTrainer(int(self._replies[0]["pid"]))
            if trainer.pid in self._early:
                trainer._set(self._early.pop(trainer.pid))
            else:
                self._trainers[trainer.pid] = trainer
            return trainer

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            with self._lock:
                if message.get("ready"):
                    self._ready.set()
                    self._settled.set()
                elif "exited" in message:
                    trainer = self._trainers.pop(int(message["exited"]), None)
                    if trainer is not None:
                        trainer._set(int(message["rc"]))
                    else:
                        self._early[int(message["exited"])] = int(message["rc"])
                else:
                    self._replies.append(message)
                    self._replied.notify_all()
        with self._lock:  # the launcher ended: what it started is left to /proc
            self._dead = True
            self._ready.clear()
            self._settled.set()
            for trainer in self._trainers.values():
                trainer._orphaned = True
            self._trainers.clear()
            self._replied.notify_all()
        proc.wait()
        log.warning("the preloaded trainer launcher stopped (exit code %s): jobs start plainly", proc.returncode)


def import_environment(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """What of `env` the preloaded libraries may read when imported: jobs alike in it share a launcher."""
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(IMPORT_ENVIRONMENT)))


class Launchers:
    """The process's launchers, one per import environment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_env: dict[tuple[tuple[str, str], ...], PreloadedLauncher] = {}

    def start(self, cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> ForkedTrainer | None:
        """Fork the job from its environment's launcher. The first job in an environment starts that
        launcher and waits for it (its imports are what the job would spend anyway); None (start it
        plainly) when there is none or it is not ready within READY_WAIT_S."""
        if not enabled(env):
            return None
        key = import_environment(env)
        with self._lock:
            launcher = self._by_env.get(key)
            if launcher is None:
                if len(self._by_env) >= MAX_LAUNCHERS:
                    return None
                launcher = self._by_env[key] = PreloadedLauncher(env)
        launcher.warm()
        if not launcher.wait_ready(READY_WAIT_S):
            return None
        return launcher.start(cmd, cwd, env, log_path)


def enabled(env: Mapping[str, str]) -> bool:
    """Whether jobs in `env` may be forked: on Linux (macOS and Windows start processes afresh), unless
    turned off, and with no GPU runtime the forks could inherit half set up (a process that has
    initialised CUDA cannot hand it on through fork): a CPU job, or a torch built without CUDA/ROCm."""
    if not sys.platform.startswith("linux") or os.environ.get("STUDIO_PRELOAD_TRAINERS", "1") == "0":
        return False
    if str(env.get("ACCELERATE_USE_CPU", "")).lower() == "true":
        return True
    import torch

    return torch.version.cuda is None and getattr(torch.version, "hip", None) is None


LAUNCHERS = Launchers()  # one set per process: every job runner in it shares what they preloaded
