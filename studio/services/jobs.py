"""Training jobs: a row in `jobs` plus a run folder, trained by a child process.

`create` validates and queues; a monitor thread (one per JobService, server-side, so jobs run
with no browser attached) starts queued jobs when a slot is free as

    python -m accelerate.commands.launch … -m engines.<kind>.train --run-dir runs/<job-id>

in its own process group, with output in `train.log`. It then tails `events.jsonl` into the
row and, once the whole process group is gone, settles the status from `result.json`:

    result "completed"                        → completed (+ an `adapters` row for the artifact)
    we cancelled                              → cancelled (resumable from its checkpoint)
    killed from outside / studio shut down    → interrupted (resumable)
    result "failed", or died before starting  → failed, error = the end of train.log

The launcher process dies at once on SIGTERM while the trainer saves a checkpoint, so the
process *group* (not the launcher's exit code) says when a job is over.
Shutdown rule: `shutdown()` sends SIGTERM to running jobs (they checkpoint), waits up to
`job_grace_s`, then marks them `interrupted`; `recover()` at start does the same to any job a
crashed studio left `running`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
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
from engines.training import (
    TRAINERS,
    JobConfig,
    RunDir,
    TrainerSpec,
    describe_config,
    resolve_params,
    trainer_spec,
)
from studio.config import StudioConfig
from studio.services.errors import Conflict, Forbidden, Invalid, NotFound, StudioError
from studio.services.job_inputs import check_base_model
from studio.services.job_processes import (
    group_alive,
    group_is_job,
    redact,
    relative_paths,
    signal_group,
    tail,
)
from studio.services.scratch import Scratch
from studio.store import Store, new_id, utcnow

log = logging.getLogger("studio.jobs")

POLL_S = 0.5
ERROR_LOG_LINES = 20
ADAPTER_TYPES = ("text_adapter", "text_model", "image_lora", "gan", "reward_model")
RESUMABLE = ("interrupted", "cancelled")
_JOB_ID = re.compile(r"^job_[0-9a-f]{16}$")
_DATASET_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class _Run:
    """A job this service launched and still watches."""

    job_id: str
    run_dir: RunDir
    proc: subprocess.Popen
    metrics: dict[str, Any]
    total_steps: int
    stop_reason: str | None = None  # "cancel" | "external" | "shutdown"
    kill_at: float | None = None  # monotonic time to escalate to SIGKILL
    events_inode: int | None = None
    events_offset: int = 0
    done: threading.Event = field(default_factory=threading.Event)


class JobService:
    def __init__(
        self,
        config: StudioConfig,
        store: Store,
        dataset_path: Callable[[str], Path] | None = None,
        trained_model_path: Callable[[str], Path | None] | None = None,
        resolve_model: Callable[[str, str], Any] | None = None,
        offline: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        # Whether trainers must not contact the hub: --offline, or (given by the Studio) the hub probe's answer.
        self.offline = offline or (lambda: config.offline)
        self.store = store
        self.dataset_path = dataset_path  # dataset id → folder; raises NotFound (set by the Studio or lazily)
        self.trained_model_path = trained_model_path  # trained model id → folder, None for other ids
        # kind → fn(base_model, params, run_folder) that writes the job's inputs (e.g. ratings) into
        # the run folder before it is queued and returns the base model id to use; it raises a
        # StudioError to refuse the job (the run folder is then removed).
        self.preparers: dict[str, Callable[[str | None, dict[str, Any], Path], str | None]] = {}
        self.runs_dir = config.data_dir / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.scratch = Scratch(config.data_dir)
        self.resolve_model = resolve_model  # (model id, model kind) → spec; UnknownModel lists the choices
        self._specs: dict[str, TrainerSpec] = {}
        self._runs: dict[str, _Run] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- kinds -----------------------------------------------------------------------------------
    def spec(self, kind: str) -> TrainerSpec:
        if kind not in TRAINERS:
            raise Invalid(f"Unknown job kind '{kind}'. Available kinds: {', '.join(sorted(TRAINERS))}.")
        if kind not in self._specs:
            try:
                self._specs[kind] = trainer_spec(kind)
            except (ImportError, AttributeError) as exc:
                raise StudioError(
                    f"The '{kind}' trainer cannot be loaded ({exc}).", code="kind_unavailable", status=503
                ) from exc
        return self._specs[kind]

    def kinds(self) -> list[dict[str, Any]]:
        """Every registered kind with its parameters: [{kind, doc, module, defaults, params: [...]}]."""
        out = []
        for kind in sorted(TRAINERS):
            try:
                spec = self.spec(kind)
            except StudioError as exc:
                log.warning("%s", exc.message)
                continue
            params = describe_config(spec.config_cls)
            defaults = {p["name"]: p["default"] for p in params}
            out.append(
                {"kind": kind, "doc": spec.doc, "module": spec.module, "defaults": defaults, "params": params}
            )
        return out

    # -- create / read ---------------------------------------------------------------------------
    def create(
        self,
        kind: str,
        dataset_id: str | None = None,
        base_model: str | None = None,
        params: dict[str, Any] | None = None,
        user: Any = None,
    ) -> dict[str, Any]:
        # 1. Check everything before touching the disk: a rejected request changes nothing.
        _require_admin(user, "start training jobs")
        spec = self.spec(kind)
        if params is not None and not isinstance(params, dict):
            raise Invalid("'params' must be an object of parameter names to values.")
        try:
            cfg = resolve_params(spec.config_cls, params)
        except ValueError as exc:
            raise Invalid(f"{kind}: {exc}") from exc
        if base_model is not None and (not isinstance(base_model, str) or len(base_model) > 300):
            raise Invalid("'base_model' must be a model id of at most 300 characters.")
        check_base_model(kind, base_model or None, self._resolve_model)
        dataset_path = self._dataset_folder(dataset_id) if dataset_id else None

        # 2. The run folder with the job's inputs and full resolved config, built in a scratch
        #    folder and moved into runs/ in one rename; then the row (a kill in between leaves a
        #    folder no row points to, which the next start removes).
        job_id = new_id("job_")
        resolved = dataclasses.asdict(cfg)
        run_dir = RunDir(self.runs_dir / job_id)
        with self.scratch.use("job") as staged:
            if kind in self.preparers:
                base_model = self.preparers[kind](base_model or None, resolved, staged)
            base_model_path = None
            if base_model and self.trained_model_path is not None:
                found = self.trained_model_path(base_model)
                base_model_path = str(found) if found else None
            RunDir(staged).write_job(
                JobConfig(
                    job_id=job_id,
                    kind=kind,
                    params=resolved,
                    base_model=base_model or None,
                    base_model_path=base_model_path,
                    dataset_id=dataset_id,
                    dataset_path=str(dataset_path) if dataset_path else None,
                    output_dir=str(self.config.data_dir / "models" / "trained" / job_id),
                    device=self.config.device,
                    offline=self.offline(),
                )
            )
            os.replace(staged, run_dir.path)
        now = utcnow()
        try:
            with self.store.transaction() as c:
                c.execute(
                    "INSERT INTO jobs (id, kind, dataset_id, base_model, params, status, total_steps,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    (
                        job_id,
                        kind,
                        dataset_id,
                        base_model or None,
                        json.dumps(resolved),
                        int(resolved.get("max_steps") or 0),
                        now,
                        now,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            _remove_tree(run_dir.path)
            raise NotFound(
                f"No dataset with id '{dataset_id}'. Upload one in the Datasets tab first."
            ) from exc
        except BaseException:
            _remove_tree(run_dir.path)
            raise
        self._kick()
        return self.get(job_id)

    def get(self, job_id: str) -> dict[str, Any]:
        return _public(self._row(job_id), self.config.data_dir)

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC"
        rows = self.store.query(sql + " LIMIT ?", (int(limit),)) if limit else self.store.query(sql)
        return [_public(r, self.config.data_dir) for r in rows]

    def events(self, job_id: str, since_step: int = 0) -> list[dict[str, Any]]:
        self._row(job_id)
        return self.run_dir(job_id).events(since_step)

    def log_tail(self, job_id: str, n: int = 50, user: Any = None) -> str:
        """The end of train.log (admins only: it shows commands, paths and tracebacks)."""
        _require_admin(user, "read job logs")
        self._row(job_id)
        return relative_paths(tail(self.run_dir(job_id).log_path, n), self.config.data_dir)

    def run_dir(self, job_id: str) -> RunDir:
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            raise NotFound(f"No job with id '{job_id}'.")
        return RunDir(self.runs_dir / job_id)

    def launch_command(self, kind: str, run_dir: Path) -> list[str]:
        """The exact child command (no shell): `accelerate launch -m <trainer> --run-dir DIR`."""
        module = self.spec(kind).module
        cpu = ["--cpu"] if self.config.device == "cpu" else []
        return [
            sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--num_processes", "1", *cpu,
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", module, "--run-dir", str(run_dir),
        ]  # fmt: skip

    def command_for(self, job_id: str) -> list[str]:
        row = self._row(job_id)
        return self.launch_command(row["kind"], self.run_dir(job_id).path)

    # -- cancel / resume -------------------------------------------------------------------------
    def cancel(self, job_id: str, user: Any = None, wait: bool = True) -> dict[str, Any]:
        """Queued: cancelled at once. Running: SIGTERM (the trainer checkpoints), SIGKILL after the grace."""
        _require_admin(user, "cancel jobs")
        with self._lock:
            row = self._row(job_id)
            if row["status"] == "queued":
                self._set_status(job_id, "cancelled", from_status="queued")
                return self.get(job_id)
            if row["status"] != "running":
                raise Conflict(
                    f"Job {job_id} is already {row['status']}; only queued or running jobs can be cancelled."
                )
            run = self._runs.get(job_id)
            if run is None:  # left running by a studio that crashed and did not recover it
                self._terminate_groups([row["pid"]] if row["pid"] else [], job_ids=[job_id])
                self._set_status(job_id, "cancelled", from_status="running")
                return self.get(job_id)
            run.stop_reason = "cancel"
            signal_group(run.proc.pid, signal.SIGTERM)
            run.kill_at = time.monotonic() + self.config.job_grace_s
        self._ensure_monitor()
        self._wake.set()
        if wait:
            run.done.wait(self.config.job_grace_s + 5)
        return self.get(job_id)

    def resume(self, job_id: str, user: Any = None) -> dict[str, Any]:
        """Re-queue an interrupted or cancelled job; its trainer continues from the newest checkpoint."""
        _require_admin(user, "resume jobs")
        with self._lock:
            row = self._row(job_id)
            if row["status"] not in RESUMABLE:
                raise Conflict(
                    f"Job {job_id} is {row['status']}; only interrupted or cancelled jobs can be resumed."
                )
            run_dir = self.run_dir(job_id)
            try:
                job = run_dir.read_job()
            except FileNotFoundError as exc:
                raise Conflict(f"The run folder of job {job_id} is gone; it cannot be resumed.") from exc
            job.resume = True
            run_dir.write_job(job)
            with self.store.transaction() as c:
                c.execute(
                    "UPDATE jobs SET status = 'queued', error = NULL, pid = NULL, updated_at = ? WHERE id = ?",
                    (utcnow(), job_id),
                )
        self._kick()
        return self.get(job_id)

    # -- lifecycle -------------------------------------------------------------------------------
    def recover(self) -> None:
        """At studio start: no job stays `running` — stop any live leftover, mark it interrupted."""
        with self._lock:
            rows = [
                r
                for r in self.store.query("SELECT * FROM jobs WHERE status = 'running'")
                if r["id"] not in self._runs
            ]
            groups = [r["pid"] for r in rows if r["pid"] and group_is_job(r["pid"], self.runs_dir / r["id"])]
            self._terminate_groups(groups, job_ids=[r["id"] for r in rows])
            for r in rows:
                run_dir = self.run_dir(r["id"])
                metrics, _ = self._record_progress(
                    r["id"], run_dir.events(), json.loads(r["metrics"] or "{}"), r["total_steps"]
                )
                result = run_dir.read_result() or {}  # _launch removed any older one
                if result.get("status") == "completed":  # it finished while no studio watched
                    self._settle_completed(r["id"], {**metrics, **(result.get("metrics") or {})}, result)
                    continue
                why = "The studio stopped while this job ran; resume it to continue from its last checkpoint."
                self._settle(r["id"], "interrupted", error=why)
        self._kick()

    def shutdown(self, terminate_jobs: bool = True) -> None:
        """Stop the monitor. With terminate_jobs, running jobs get SIGTERM, a grace period, and `interrupted`."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
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

    # -- the monitor -----------------------------------------------------------------------------
    def _kick(self) -> None:
        self._ensure_monitor()
        self._wake.set()

    def _ensure_monitor(self) -> None:
        with self._lock:
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
        with self._lock:
            for run in list(self._runs.values()):
                self._watch(run)
            free = self.config.max_concurrent_jobs - len(self._runs)
            if free > 0 and not self._stop.is_set():
                queued = self.store.query(
                    "SELECT * FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT ?", (free,)
                )
                for row in queued:
                    self._launch(row)

    def _launch(self, row: sqlite3.Row) -> None:
        job_id, run_dir = row["id"], self.run_dir(row["id"])
        try:
            job = run_dir.read_job()
            cmd = self.launch_command(row["kind"], run_dir.path)
        except (FileNotFoundError, StudioError) as exc:
            msg = exc.message if isinstance(exc, StudioError) else f"The run folder is incomplete: {exc}"
            self._settle(job_id, "failed", error=msg)
            return
        for stale in (run_dir.result_path, run_dir.started_path):
            stale.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        root = str(Path(engines.__file__).resolve().parent.parent)  # so `-m engines…` imports from any cwd
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        if self.offline():  # the child's own environment; this process's is left alone
            env["HF_HUB_OFFLINE"] = "1"
        with open(run_dir.log_path, "ab") as logf:
            logf.write(f"--- {utcnow()} {'resume' if job.resume else 'start'}: {shlex.join(cmd)}\n".encode())
            logf.flush()
            try:
                # DO NOT use shell=True. A new session makes the child a process-group leader.
                proc = subprocess.Popen(
                    cmd,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    cwd=run_dir.path,
                    env=env,
                )
            except OSError as exc:
                self._settle(job_id, "failed", error=f"Could not start the trainer: {exc}")
                return
        run = _Run(job_id, run_dir, proc, json.loads(row["metrics"] or "{}"), int(row["total_steps"] or 0))
        try:  # a resumed trainer rewrites events.jsonl: skip what is there until it does
            st = run_dir.events_path.stat()
            run.events_inode, run.events_offset = st.st_ino, st.st_size
        except FileNotFoundError:
            pass
        self._runs[job_id] = run
        with self.store.transaction() as c:
            c.execute(
                "UPDATE jobs SET status = 'running', pid = ?, error = NULL, updated_at = ? WHERE id = ?",
                (proc.pid, utcnow(), job_id),
            )
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
        """Fold the complete lines appended to events.jsonl since last time into the row."""
        path = run.run_dir.events_path
        try:
            st = path.stat()
        except FileNotFoundError:
            return
        if st.st_ino != run.events_inode or st.st_size < run.events_offset:
            run.events_inode, run.events_offset = st.st_ino, 0
        with open(path, "rb") as f:
            f.seek(run.events_offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        run.events_offset += len(complete)
        events = []
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and isinstance(event.get("step"), int):
                events.append(event)
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
        metrics = _merge_metrics(metrics, events)
        for e in events:
            if isinstance(e.get("total_steps"), int) and e["total_steps"] > 0:
                total_steps = e["total_steps"]
        step = events[-1]["step"]
        progress = min(step / total_steps, 1.0) if total_steps else 0.0
        with self.store.transaction() as c:
            c.execute(
                "UPDATE jobs SET step = ?, total_steps = ?, progress = ?, metrics = ?, updated_at = ? WHERE id = ?",
                (step, total_steps, progress, json.dumps(metrics), utcnow(), job_id),
            )
        return metrics, total_steps

    def _finish(self, run: _Run) -> None:
        """The process group is gone: settle the status from result.json and why it stopped."""
        self._sync_events(run)
        result = run.run_dir.read_result() or {}
        metrics = {**run.metrics, **(result.get("metrics") or {})}
        status = _final_status(result.get("status"), run.stop_reason, run.run_dir.started_path.exists())
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
            self._settle(run.job_id, status, metrics=metrics, error=error)
        self._runs.pop(run.job_id, None)  # only once settled: a failed write is retried next tick
        run.done.set()
        log.info("job %s finished: %s", run.job_id, status)

    def _settle_completed(self, job_id: str, metrics: dict[str, Any], result: dict[str, Any]) -> None:
        """Completed, with the artifact registered; failed when the artifact cannot be."""
        try:
            self._settle(job_id, "completed", metrics=metrics, artifact=result.get("artifact"), progress=1.0)
        except ValueError as exc:
            self._settle(job_id, "failed", metrics=metrics, error=str(exc))

    def _settle(
        self,
        job_id: str,
        status: str,
        *,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
        artifact: dict[str, Any] | None = None,
        progress: float | None = None,
    ) -> None:
        """Write a final status (and register the artifact) in one transaction."""
        row = self._row(job_id)
        adapter = self._adapter_row(row, artifact, metrics or {}) if artifact else None
        metrics = metrics if metrics is not None else json.loads(row["metrics"] or "{}")
        with self.store.transaction() as c:
            if adapter is not None:
                c.execute(
                    "INSERT INTO adapters (id, name, type, base_model, job_id, path, meta, created_at)"
                    " VALUES (:id, :name, :type, :base_model, :job_id, :path, :meta, :created_at)",
                    adapter,
                )
            c.execute(
                "UPDATE jobs SET status = ?, progress = COALESCE(?, progress), metrics = ?, error = ?,"
                " artifact_type = ?, artifact_id = ?, pid = NULL, updated_at = ? WHERE id = ?",
                (status, progress, json.dumps(metrics), error, adapter and adapter["type"],
                 adapter and adapter["id"], utcnow(), job_id),
            )  # fmt: skip

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
            "name": str(artifact.get("name") or f"{job['kind']}-{job['id']}")[:200],
            "type": artifact["type"],
            "base_model": str(artifact.get("base_model") or job["base_model"] or ""),
            "job_id": job["id"],
            "path": path.relative_to(data_dir).as_posix(),
            "meta": json.dumps(
                {"kind": job["kind"], "metrics": metrics, "params": json.loads(job["params"])}
            ),
            "created_at": utcnow(),
        }

    # -- helpers ---------------------------------------------------------------------------------
    def _row(self, job_id: str) -> sqlite3.Row:
        self.run_dir(job_id)  # validates the id's shape first
        row = self.store.query_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise NotFound(f"No job with id '{job_id}'.")
        return row

    def _set_status(self, job_id: str, status: str, *, from_status: str) -> None:
        with self.store.transaction() as c:
            c.execute(
                "UPDATE jobs SET status = ?, pid = NULL, updated_at = ? WHERE id = ? AND status = ?",
                (status, utcnow(), job_id, from_status),
            )

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

    def _resolve_model(self, model_id: str, model_kind: str) -> Any:
        if self.resolve_model is None:  # a service built on its own (tools, tests): this data dir's models
            from studio.services.models import ModelService

            self.resolve_model = ModelService(self.config, self.store).resolve
        return self.resolve_model(model_id, model_kind)

    def _dataset_folder(self, dataset_id: str) -> Path:
        if not isinstance(dataset_id, str) or not _DATASET_ID.match(dataset_id):
            raise NotFound(f"No dataset with id '{dataset_id}'.")
        if self.dataset_path is None:
            try:
                from studio.services.datasets import DatasetService
            except ImportError:
                folder = self.config.data_dir / "datasets" / dataset_id
                if not folder.is_dir():
                    raise NotFound(f"No dataset with id '{dataset_id}'.") from None
                return folder
            self.dataset_path = DatasetService(self.config, self.store).path
        return Path(self.dataset_path(dataset_id))


# -- module helpers ------------------------------------------------------------------------------
def _public(row: sqlite3.Row, data_dir: Path) -> dict[str, Any]:
    """The API.md job shape (plus dataset_id, base_model, params); paths in `error` relative."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "status": row["status"],
        "progress": float(row["progress"] or 0.0),
        "step": int(row["step"] or 0),
        "total_steps": int(row["total_steps"] or 0),
        "metrics": json.loads(row["metrics"] or "{}"),
        "artifact": {"type": row["artifact_type"], "id": row["artifact_id"]} if row["artifact_id"] else None,
        "error": relative_paths(row["error"], data_dir) if row["error"] else None,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "dataset_id": row["dataset_id"],
        "base_model": row["base_model"],
        "params": json.loads(row["params"] or "{}"),
    }


def _final_status(outcome: str | None, stop_reason: str | None, started: bool) -> str:
    """result.json's status + why we stopped it + whether the trainer got going → the job status."""
    if outcome == "completed":
        return "completed"  # even if a stop request came too late to matter
    if stop_reason == "cancel":
        return "cancelled"
    if stop_reason in ("external", "shutdown") or outcome == "cancelled" or (outcome is None and started):
        return "interrupted"  # stopped by a signal we did not send as a cancel: resumable
    return "failed"  # it raised (result "failed") or never started (bad module, bad arguments)


def _require_admin(user: Any, what: str) -> None:
    if user is not None and not getattr(user, "is_admin", False):
        raise Forbidden(f"'{getattr(user, 'name', user)}' may not {what}: only admins can.")


def _merge_metrics(metrics: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(metrics)
    for e in events:
        for k, v in e.items():
            if (
                k not in ("step", "time", "total_steps")
                and isinstance(v, int | float)
                and not isinstance(v, bool)
            ):
                out[k] = v
    return out


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
