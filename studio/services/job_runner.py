"""The job runner: starts queued jobs as child processes, watches them, and settles them.

(Over 450 lines because launch, watch, settle, recover and the replica duties are one state
machine under one lock; what stands alone is in job_processes.py and job_replicas.py.)

A monitor thread (one per runner, server-side, so jobs run with no browser attached) starts
queued jobs when a slot is free as

    python -m accelerate.commands.launch … -m engines.<kind>.train --run-dir runs/<job-id>

(for one process, what that launcher would run is prepared here and started directly: the same
command and environment, one interpreter fewer; job_processes.direct_launch) in its own process group, with output in `train.log`. It then tails `events.jsonl` into the
row (with the engine's EventTail) and, once the whole process group is gone, settles the status
from `result.json`:

    result "completed"                        → completed (+ an `adapters` row for the artifact)
    we cancelled                              → cancelled (resumable from its checkpoint)
    killed from outside / studio shut down    → interrupted (resumable)
    result "failed", or died before starting  → failed, error = the end of train.log

The launcher process dies at once on SIGTERM while the trainer saves a checkpoint, so the
process *group* (not the launcher's exit code) says when a job is over.
Shutdown rule: `shutdown()` sends SIGTERM to running jobs (they checkpoint), waits up to
`job_grace_s`, then marks them `interrupted`; `recover()` at start does the same to any job a
crashed studio left `running`.

Replicas on one database (job_replicas.py): a runner claims queued jobs with a row lock, renews
the lease of what it runs, cancels what another replica asked it to (by the row), and settles the
jobs of a replica that died, as `recover()` does, once that replica is known to be gone.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import engines
from engines.training import EventTail, JobConfig, RunDir
from studio.config import StudioConfig
from studio.services import job_replicas as replicas
from studio.services.changes import JOBS, MODELS, Changes
from studio.services.errors import NotFound, StudioError
from studio.services.job_launcher import LAUNCHERS, ForkedTrainer
from studio.services.job_processes import (
    direct_launch,
    final_status,
    free_port,
    group_alive,
    group_is_job,
    merge_metrics,
    num_processes,
    redact,
    signal_group,
    tail,
)
from studio.services.version_names import read_name
from studio.store import Store, new_id, utcnow
from studio.store import jobs as table

log = logging.getLogger("studio.jobs")

POLL_S = 0.5
ERROR_LOG_LINES = 20
ADAPTER_TYPES = ("text_adapter", "text_model", "image_lora", "image_model", "gan", "reward_model",
                 "speech_model")


@dataclass
class _Run:
    """A job this runner launched and still watches."""

    job_id: str
    run_dir: RunDir
    proc: subprocess.Popen | ForkedTrainer
    metrics: dict[str, Any]
    total_steps: int
    events: EventTail
    stop_reason: str | None = None  # "cancel" | "external" | "shutdown"
    kill_at: float | None = None  # monotonic time to escalate to SIGKILL
    done: threading.Event = field(default_factory=threading.Event)


class JobRunner:
    def __init__(
        self,
        config: StudioConfig,
        store: Store,
        runs_dir: Path,
        trainer_module: Callable[[str], str],
        offline: Callable[[], bool] | None = None,
        changes: Changes | None = None,
    ) -> None:
        self.config = config
        self.changes = changes or Changes()  # bumped when a job changes status (and its artifact lands)
        self.store = store
        self.runs_dir = runs_dir
        self.offline = offline or (lambda: config.offline)  # whether trainers must not contact the hub
        self.models_root = config.data_dir / "models"
        self.trainer_module = trainer_module  # kind → module to run; raises a StudioError for a broken kind
        self.lock = threading.RLock()  # held while a job changes hands: launch, cancel, resume, settle
        self._runs: dict[str, _Run] = {}
        self.replica = replicas.new_replica_id()  # this runner, as job rows name their owner
        self._renewed_at = self._swept_at = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what a job gets ---------------------------------------------------------------------------
    def job_config(self, job_id: str, kind: str, **job: Any) -> JobConfig:
        """The config.json of a new job: what the service resolved, plus where this studio keeps things."""
        return JobConfig(
            job_id=job_id,
            kind=kind,
            **job,
            output_dir=str(self.models_root / "trained" / job_id),
            models_root=str(self.models_root),
            device=self.config.device,
            offline=self.offline(),
        )

    def launch_command(self, kind: str, run_dir: Path, num_processes: int = 1) -> list[str]:
        """The job's command (no shell): `accelerate launch -m <trainer> --run-dir DIR`. One process:
        `_launch` starts the trainer of that command directly, in the environment accelerate prepares
        (job_processes.direct_launch). Several processes: accelerate's multi-process launch (torch.distributed; on a machine without
        GPUs, or with `--device cpu`, the processes train on the CPU over gloo)."""
        module = self.trainer_module(kind)
        if num_processes > 1:
            # --cpu would make accelerate start one process; the trainer's Accelerator(cpu=…) picks the device
            procs = ["--multi_gpu", "--num_processes", str(num_processes), "--main_process_port", str(free_port())]
        else:
            procs = ["--num_processes", "1", *(["--cpu"] if self.config.device == "cpu" else [])]
        return [
            sys.executable, "-m", "accelerate.commands.launch", "--quiet", *procs,
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", module, "--run-dir", str(run_dir),
        ]  # fmt: skip

    # -- the service's requests --------------------------------------------------------------------
    def kick(self) -> None:
        """Look at the queue now (a job was queued or a slot may be free)."""
        self._ensure_monitor()
        self._wake.set()

    def cancel(self, row: sqlite3.Row) -> threading.Event | None:
        """Cancel a queued or running job. Running: SIGTERM (the trainer checkpoints), SIGKILL after
        the grace period; the returned Event is set once it is settled. None: cancelled already."""
        job_id = row["id"]
        with self.lock:
            if row["status"] == "queued":
                if self._set_status(job_id, "cancelled", from_status="queued"):
                    return None
                row = self._row(job_id)  # a replica claimed it meanwhile: cancel it where it runs
                if row["status"] != "running":
                    return None
            run = self._runs.get(job_id)
            if run is None and not self._take_over(row):  # another replica runs it: ask it, by the row
                table.request_cancel(self.store, job_id)
                return replicas.Settled(self.store, job_id)
            if run is None:  # left running by a studio that crashed and did not recover it
                self._terminate_groups(self._groups_of([row]), job_ids=[job_id])
                self._set_status(job_id, "cancelled", from_status="running")
                return None
            self._stop_run(run, "cancel")
        self.kick()
        return run.done

    def _stop_run(self, run: _Run, reason: str) -> None:
        """SIGTERM (the trainer checkpoints), SIGKILL after the grace period."""
        run.stop_reason = reason
        signal_group(run.proc.pid, signal.SIGTERM)
        run.kill_at = time.monotonic() + self.config.job_grace_s

    # -- lifecycle ---------------------------------------------------------------------------------
    def recover(self) -> None:
        """At studio start: no job stays `running` without a live owner — stop any live leftover of
        a studio that is gone, mark its jobs interrupted (or completed, if they finished unwatched)."""
        self._sweep(unowned=True)
        self.kick()

    def _sweep(self, unowned: bool = False) -> None:
        """Settle the running jobs whose owner is gone (see job_replicas.py); with `unowned`, at
        start, also those no runner ever owned (left by a studio from before replicas)."""
        with self.lock:
            rows = [r for r in table.running(self.store)
                    if r["id"] not in self._runs and (unowned or r["owner"]) and self._take_over(r)]
            if not rows:
                return
            self._terminate_groups(self._groups_of(rows), job_ids=[r["id"] for r in rows])
            for r in rows:
                run_dir = self._run_dir(r["id"])
                metrics, _ = self._record_progress(
                    r["id"], run_dir.events(), json.loads(r["metrics"] or "{}"), r["total_steps"]
                )
                result = run_dir.read_result() or {}  # _launch removed any older one
                if result.get("status") == "completed":  # it finished while no studio watched
                    self._settle_completed(r["id"], {**metrics, **(result.get("metrics") or {})}, result)
                    continue
                why = "The studio stopped while this job ran; resume it to continue from its last checkpoint."
                self.settle(r["id"], "interrupted", error=why)

    def _take_over(self, row: sqlite3.Row) -> bool:
        """Own a running job whose owner is gone (at once when that is known, else once its lease
        lapsed), to settle it; False while its owner lives, or when another replica took it first."""
        gone = replicas.owner_gone(row["owner"])
        lease_s = self.config.job_lease_s
        if gone is False:  # alive here, as far as its pid tells: unless it stopped renewing long ago
            gone = None if replicas.long_lapsed(row["lease_until"], 10 * lease_s) else False
        if gone is False:
            return False
        now = None if gone else utcnow()
        if now is not None and row["lease_until"] is not None and row["lease_until"] >= now:
            return False
        return table.take_over(self.store, row["id"], self.replica, replicas.lease_until(lease_s),
                               was=row["owner"], now=now)

    def _groups_of(self, rows: list[sqlite3.Row]) -> list[int]:
        """The process groups of these jobs that still run here (a pid from another host means nothing here)."""
        return [r["pid"] for r in rows if r["pid"] and replicas.on_this_host(r["owner"])
                and group_is_job(r["pid"], self.runs_dir / r["id"])]

    def shutdown(self, terminate_jobs: bool = True) -> None:
        """Stop the monitor. With terminate_jobs, running jobs get SIGTERM, a grace period, and `interrupted`."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        replicas.retire(self.replica)
        with self.lock:
            runs = list(self._runs.values())
            if not terminate_jobs:
                self._runs.clear()  # as if the studio crashed: the children and rows are left as they are
                return
            for run in runs:
                if run.stop_reason is None:
                    run.stop_reason = "shutdown"
            self._terminate_groups([r.proc.pid for r in runs], job_ids=[r.job_id for r in runs])
            for run in runs:
                run.proc.poll()
                self._finish(run)

    # -- the monitor -------------------------------------------------------------------------------
    def _ensure_monitor(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():  # the usual case, without waiting for a launch
            return
        with self.lock:
            if self._stop.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._monitor, name="jobs-monitor", daemon=True)
            self._thread.start()

    def _monitor(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # the monitor must outlive any one bad job
                log.exception("jobs monitor tick failed")
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _tick(self) -> None:
        with self.lock:
            for run in list(self._runs.values()):
                self._watch(run)
            now, lease_s = time.monotonic(), self.config.job_lease_s
            if self._runs:
                if now - self._renewed_at >= lease_s / 3:
                    owned = table.renew(self.store, self.replica, replicas.lease_until(lease_s))
                    self._renewed_at = now
                    for run in self._runs.values():
                        if run.job_id not in owned and run.stop_reason is None:  # settled elsewhere
                            log.warning("job %s: another replica settled it (this one's lease lapsed); "
                                        "stopping its trainer here", run.job_id)
                            self._stop_run(run, "lost")
                for job_id in table.cancel_requested(self.store, self.replica):  # asked on another replica
                    run = self._runs.get(job_id)
                    if run is not None and run.stop_reason is None:
                        self._stop_run(run, "cancel")
            if now - self._swept_at >= min(lease_s / 3, 5.0):
                self._sweep()
                self._swept_at = now
            free = self.config.max_concurrent_jobs - len(self._runs)
            while free > 0 and not self._stop.is_set() and table.next_queued(self.store, 1):
                row = table.claim(self.store, self.replica, replicas.lease_until(lease_s))
                if row is None:  # another replica took it
                    break
                self._launch(row)
                free -= 1

    def _launch(self, row: sqlite3.Row) -> None:
        job_id, run_dir = row["id"], self._run_dir(row["id"])
        try:
            job = run_dir.read_job()
            cmd = self.launch_command(row["kind"], run_dir.path, num_processes(job.params))
        except (FileNotFoundError, StudioError) as exc:
            msg = exc.message if isinstance(exc, StudioError) else f"The run folder is incomplete: {exc}"
            self.settle(job_id, "failed", error=msg)
            return
        if job.models_root is None:  # queued or resumable since before config.json named it
            job.models_root = str(self.models_root)
            run_dir.write_job(job)
        for stale in (run_dir.result_path, run_dir.started_path):
            stale.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        root = str(Path(engines.__file__).resolve().parent.parent)  # so `-m engines…` imports from any cwd
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        if self.offline():  # the child's own environment; this process's is left alone
            env["HF_HUB_OFFLINE"] = "1"
        direct = direct_launch(cmd, env)  # one process: accelerate's launch, prepared here
        cmd, env, said = direct or (cmd, env, "")
        with open(run_dir.log_path, "ab") as logf:
            logf.write(f"--- {utcnow()} {'resume' if job.resume else 'start'}: {shlex.join(cmd)}\n".encode())
            if said:
                logf.write(f"{said}\n".encode())
            logf.flush()
            # one process: forked from a preloaded launcher when one is ready (the same command, sooner)
            proc = LAUNCHERS.start(cmd, run_dir.path, env, run_dir.log_path) if direct else None
            try:
                # DO NOT use shell=True. A new session makes the child a process-group leader.
                proc = proc or subprocess.Popen(
                    cmd,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    cwd=run_dir.path,
                    env=env,
                )
            except OSError as exc:
                self.settle(job_id, "failed", error=f"Could not start the trainer: {exc}")
                return
        # a resumed trainer rewrites events.jsonl: skip what is there until it does
        events = EventTail(run_dir.events_path, skip_existing=True)
        metrics, total_steps = json.loads(row["metrics"] or "{}"), int(row["total_steps"] or 0)
        self._runs[job_id] = _Run(job_id, run_dir, proc, metrics, total_steps, events)
        table.mark_running(self.store, job_id, proc.pid)
        log.info("job %s started (pid %s)", job_id, proc.pid)

    def _watch(self, run: _Run) -> None:
        self._sync_events(run)
        rc = run.proc.poll()
        if rc is None:  # the launcher waits for the trainer, so the job is still on
            if run.kill_at is not None and time.monotonic() >= run.kill_at:
                signal_group(run.proc.pid, signal.SIGKILL)
            return
        if not group_alive(run.proc.pid):
            self._finish(run)
            return
        # The launcher is gone but something in its group lives on (an orphaned trainer).
        if rc < 0 and run.stop_reason is None:  # a signal we did not send: stop the rest, resumably
            run.stop_reason = "external"
            signal_group(run.proc.pid, signal.SIGTERM)
        if run.kill_at is None:
            run.kill_at = time.monotonic() + self.config.job_grace_s
        elif time.monotonic() >= run.kill_at:
            signal_group(run.proc.pid, signal.SIGKILL)

    def _sync_events(self, run: _Run) -> None:
        """Fold the events appended since last time into the row."""
        events = run.events.read_new()
        if events:
            run.metrics, run.total_steps = self._record_progress(
                run.job_id, events, run.metrics, run.total_steps
            )

    def _record_progress(
        self, job_id: str, events: list[dict[str, Any]], metrics: dict[str, Any], total_steps: int
    ) -> tuple[dict[str, Any], int]:
        """Step, progress and the latest metrics from new events → the row."""
        if not events:
            return metrics, total_steps
        metrics = merge_metrics(metrics, events)
        for e in events:
            if isinstance(e.get("total_steps"), int) and e["total_steps"] > 0:
                total_steps = e["total_steps"]
        step = events[-1]["step"]
        progress = min(step / total_steps, 1.0) if total_steps else 0.0
        table.record_progress(self.store, job_id, step=step, total_steps=total_steps, progress=progress,
                              metrics=metrics)
        return metrics, total_steps

    # -- settling ----------------------------------------------------------------------------------
    def _finish(self, run: _Run) -> None:
        """The process group is gone: settle the status from result.json and why it stopped."""
        self._sync_events(run)
        result = run.run_dir.read_result() or {}
        metrics = {**run.metrics, **(result.get("metrics") or {})}
        status = final_status(result.get("status"), run.stop_reason, run.run_dir.started_path.exists())
        error = None
        if status == "interrupted":
            why = "the studio shut down" if run.stop_reason == "shutdown" else "it was stopped from outside"
            step = self._row(run.job_id)["step"]
            error = f"Interrupted at step {step}: {why}. Resume it to continue from its last checkpoint."
        elif status == "failed":
            last_lines = redact(tail(run.run_dir.log_path, ERROR_LOG_LINES)).strip()[-4000:]
            error = last_lines or f"The trainer exited with code {run.proc.returncode}."
        if status == "completed":
            self._settle_completed(run.job_id, metrics, result)
        else:
            self.settle(run.job_id, status, metrics=metrics, error=error)
        self._runs.pop(run.job_id, None)  # only once settled: a failed write is retried next tick
        run.done.set()
        log.info("job %s finished: %s", run.job_id, status)

    def _settle_completed(self, job_id: str, metrics: dict[str, Any], result: dict[str, Any]) -> None:
        """Completed, with the artifact registered; failed when the artifact cannot be."""
        try:
            self.settle(job_id, "completed", metrics=metrics, artifact=result.get("artifact"), progress=1.0)
        except ValueError as exc:
            self.settle(job_id, "failed", metrics=metrics, error=str(exc))

    def settle(
        self,
        job_id: str,
        status: str,
        *,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
        artifact: dict[str, Any] | None = None,
        progress: float | None = None,
    ) -> None:
        """Write a final status (and register the artifact) in one transaction; ValueError for an
        artifact that is not one the studio can register."""
        row = self._row(job_id)
        adapter = self._adapter_row(row, artifact, metrics or {}) if artifact else None
        metrics = metrics if metrics is not None else json.loads(row["metrics"] or "{}")
        owner = self.replica if row["owner"] is not None else None  # a row no runner took: as it is
        if not table.settle(self.store, job_id, status=status, metrics=metrics, error=error, progress=progress,
                            artifact=adapter, owner=owner):
            log.warning("job %s: not settled as %s here: another replica settled it", job_id, status)
            return
        self.changes.bump(JOBS, *([MODELS] if adapter is not None else []))

    def _adapter_row(
        self, job: sqlite3.Row, artifact: dict[str, Any], metrics: dict[str, Any]
    ) -> dict[str, Any]:
        """Validate the trainer's artifact (a known type, a path inside the data dir) → an adapters row."""
        if not isinstance(artifact, dict) or artifact.get("type") not in ADAPTER_TYPES:
            raise ValueError(f"The trainer reported an artifact of unknown type: {artifact!r}.")
        path = Path(str(artifact.get("path") or ""))
        if not path.is_absolute():
            path = self.runs_dir / job["id"] / path
        path = path.resolve()
        data_dir = self.config.data_dir.resolve()
        if not path.is_relative_to(data_dir) or not path.exists():
            raise ValueError(f"The trainer's artifact {path} is missing or outside the data folder.")
        return {
            "id": new_id("ad_"),
            "name": read_name(self.runs_dir / job["id"]) or str(artifact.get("name") or f"{job['kind']}-{job['id']}")[:200],
            "type": artifact["type"],
            "base_model": str(artifact.get("base_model") or job["base_model"] or ""),
            "job_id": job["id"],
            "path": path.relative_to(data_dir).as_posix(),
            "meta": {"kind": job["kind"], "metrics": metrics, "params": json.loads(job["params"])},
            "created_at": utcnow(),
        }

    # -- helpers -----------------------------------------------------------------------------------
    def _run_dir(self, job_id: str) -> RunDir:
        return RunDir(self.runs_dir / job_id)

    def _row(self, job_id: str) -> sqlite3.Row:
        row = table.get(self.store, job_id)
        if row is None:
            raise NotFound(f"No job with id '{job_id}'.")
        return row

    def _set_status(self, job_id: str, status: str, *, from_status: str) -> bool:
        moved = table.set_status(self.store, job_id, status, from_status=from_status)
        self.changes.bump(JOBS)
        return moved

    def _terminate_groups(self, pgids: list[int], job_ids: list[str]) -> None:
        """SIGTERM every group, wait up to the grace period, SIGKILL what is left."""
        pgids = [p for p in pgids if p]
        for pgid in pgids:
            signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.job_grace_s
        while any(self._group_running(p) for p in pgids) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pgid in pgids:
            if self._group_running(pgid):
                log.warning("jobs %s: process group %s ignored SIGTERM; killing it", job_ids, pgid)
                signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(self._group_running(p) for p in pgids) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _group_running(self, pgid: int) -> bool:
        for run in self._runs.values():  # reap our own launcher so it does not linger as a zombie
            if run.proc.pid == pgid:
                run.proc.poll()
        return group_alive(pgid)
