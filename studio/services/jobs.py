"""Training jobs, as the doors see them: create (validate, build the run folder, queue), list,
get, events, the log, cancel, resume and the kinds there are. A job is a row in `jobs` plus a run
folder (`runs/<job-id>/`); the JobRunner (job_runner.py) starts, watches and settles it.

A rejected request changes nothing: everything is checked before the run folder is built (in a
scratch folder, moved into runs/ in one rename) and the row inserted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engines.training import (
    TRAINERS,
    RunDir,
    TrainerSpec,
    describe_config,
    resolve_params,
    trainer_spec,
)
from studio.config import StudioConfig
from studio.services.changes import JOBS, Changes
from studio.services.errors import Conflict, Invalid, NotFound, StudioError, only_admins
from studio.services.job_inputs import check_base_model
from studio.services.job_processes import num_processes, relative_paths, tail
from studio.services.job_runner import JobRunner
from studio.services.scratch import Scratch
from studio.services.version_names import check_name, write_name
from studio.store import IntegrityError, Store, new_id
from studio.store import jobs as table

log = logging.getLogger("studio.jobs")

RESUMABLE = ("interrupted", "cancelled")
_JOB_ID = re.compile(r"^job_[0-9a-f]{16}$")
_SAMPLE = re.compile(r"^step-\d{1,9}(-\d{1,3})?\.(png|wav)$")
_DATASET_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class JobService:
    def __init__(
        self,
        config: StudioConfig,
        store: Store,
        dataset_path: Callable[[str], Path] | None = None,
        trained_model_path: Callable[[str], Path | None] | None = None,
        resolve_model: Callable[[str, str], Any] | None = None,
        offline: Callable[[], bool] | None = None,
        changes: Changes | None = None,
    ) -> None:
        self.config = config
        self.changes = changes or Changes()  # bumped when a job is queued or settles (and its artifact lands)
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
        self.scratch = Scratch(config.data_dir, config.shared_data_dir)
        self.resolve_model = resolve_model  # (model id, model kind) → spec; UnknownModel lists the choices
        self._specs: dict[str, TrainerSpec] = {}
        self.runner = JobRunner(config, store, self.runs_dir, trainer_module=lambda kind: self.spec(kind).module,
                                offline=self.offline, changes=self.changes)

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
        name: str | None = None,
    ) -> dict[str, Any]:
        """Queue a job; `name` is what its finished version will be called (else the trainer's name)."""
        # 1. Check everything before touching the disk: a rejected request changes nothing.
        _require_admin(user, "start training jobs")
        name = check_name(name)
        spec = self.spec(kind)
        if params is not None and not isinstance(params, dict):
            raise Invalid("'params' must be an object of parameter names to values.")
        try:
            cfg = resolve_params(spec.config_cls, params)
        except ValueError as exc:
            raise Invalid(f"{kind}: {exc}") from exc
        _check_processes(getattr(cfg, "num_processes", 1), self.config.device)
        if base_model is not None and (not isinstance(base_model, str) or len(base_model) > 300):
            raise Invalid("'base_model' must be a model id of at most 300 characters.")
        check_base_model(kind, base_model or None, self._resolve_model)
        dataset_path = self._dataset_folder(dataset_id) if dataset_id else None
        if spec.check_dataset is not None:
            try:
                spec.check_dataset(dataset_path)
            except ValueError as exc:
                raise Invalid(f"{kind}: {exc}", code="unusable_dataset") from exc

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
                self.runner.job_config(
                    job_id,
                    kind,
                    params=resolved,
                    base_model=base_model or None,
                    base_model_path=base_model_path,
                    dataset_id=dataset_id,
                    dataset_path=str(dataset_path) if dataset_path else None,
                )
            )
            write_name(staged, name)
            os.replace(staged, run_dir.path)
        try:
            table.create(self.store, job_id, kind=kind, dataset_id=dataset_id, base_model=base_model or None,
                         params=resolved, total_steps=int(resolved.get("max_steps") or 0))
        except IntegrityError as exc:
            _remove_tree(run_dir.path)
            raise NotFound(
                f"No dataset with id '{dataset_id}'. Upload one in the Datasets tab first."
            ) from exc
        except BaseException:
            _remove_tree(run_dir.path)
            raise
        self.changes.bump(JOBS)
        self.runner.kick()
        return self.get(job_id)

    def get(self, job_id: str) -> dict[str, Any]:
        return _public(self._row(job_id), self.config.data_dir)

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        return [_public(r, self.config.data_dir) for r in table.all_(self.store, limit)]

    def activity(self) -> str:
        """A digest of what the unfinished jobs are doing (status, step, log size): a page watching
        a job redraws when it moves. Says nothing else about them."""
        moving = [(j["id"], j["status"], j["step"], j["updated_at"], _log_size(self.run_dir(j["id"]).log_path))
                  for j in self.list(limit=50) if j["status"] in ("queued", "running")]
        return hashlib.sha256(json.dumps(moving).encode()).hexdigest()[:16] if moving else ""

    def events(self, job_id: str, since_step: int = 0) -> list[dict[str, Any]]:
        self._row(job_id)
        return self.run_dir(job_id).events(since_step)

    def log_tail(self, job_id: str, n: int = 50, user: Any = None) -> str:
        """The end of train.log (admins only: it shows commands, paths and tracebacks)."""
        _require_admin(user, "read job logs")
        self._row(job_id)
        return relative_paths(tail(self.run_dir(job_id).log_path, n), self.config.data_dir)

    def sample_file(self, job_id: str, name: str, user: Any = None) -> Path:
        """A sample the job made (`step-<N>[-<k>].png|wav` in its samples/ folder); admins only, like the log:
        a speech job's samples are the voice of the person whose recordings it learns from."""
        _require_admin(user, "read job samples")
        self._row(job_id)
        path = self.run_dir(job_id).samples_dir / str(name)
        if not _SAMPLE.match(str(name)) or not path.is_file():
            raise NotFound(f"Job '{job_id}' has no sample '{str(name)[:80]}'. Its events name its samples.")
        return path

    def run_dir(self, job_id: str) -> RunDir:
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            raise NotFound(f"No job with id '{job_id}'.")
        return RunDir(self.runs_dir / job_id)

    def launch_command(self, kind: str, run_dir: Path) -> list[str]:
        """The job's command, as one would type it: `accelerate launch -m <trainer> --run-dir DIR` (the
        runner starts the same trainer, in the environment accelerate prepares for it)."""
        return self.runner.launch_command(kind, run_dir)

    def command_for(self, job_id: str) -> list[str]:
        row = self._row(job_id)
        return self.runner.launch_command(row["kind"], self.run_dir(job_id).path,
                                          num_processes(json.loads(row["params"] or "{}")))

    # -- cancel / resume -------------------------------------------------------------------------
    def cancel(self, job_id: str, user: Any = None, wait: bool = True) -> dict[str, Any]:
        """Queued: cancelled at once. Running: SIGTERM (the trainer checkpoints), SIGKILL after the grace."""
        _require_admin(user, "cancel jobs")
        with self.runner.lock:
            row = self._row(job_id)
            if row["status"] not in ("queued", "running"):
                raise Conflict(
                    f"Job {job_id} is already {row['status']}; only queued or running jobs can be cancelled."
                )
            done = self.runner.cancel(row)
        if wait and done is not None:
            done.wait(self.config.job_grace_s + 5)
        return self.get(job_id)

    def resume(self, job_id: str, user: Any = None) -> dict[str, Any]:
        """Re-queue an interrupted or cancelled job; its trainer continues from the newest checkpoint."""
        _require_admin(user, "resume jobs")
        with self.runner.lock:
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
            table.requeue(self.store, job_id)
            self.changes.bump(JOBS)
        self.runner.kick()
        return self.get(job_id)

    # -- lifecycle (the runner's) ----------------------------------------------------------------
    def recover(self) -> None:
        """At studio start: no job stays `running` — stop any live leftover, mark it interrupted."""
        self.runner.recover()

    def shutdown(self, terminate_jobs: bool = True) -> None:
        """Stop the monitor. With terminate_jobs, running jobs get SIGTERM, a grace period, and `interrupted`."""
        self.runner.shutdown(terminate_jobs)

    # -- helpers ---------------------------------------------------------------------------------
    def _row(self, job_id: str) -> sqlite3.Row:
        self.run_dir(job_id)  # validates the id's shape first
        row = table.get(self.store, job_id)
        if row is None:
            raise NotFound(f"No job with id '{job_id}'.")
        return row

    def _resolve_model(self, model_id: str, model_kind: str) -> Any:
        if self.resolve_model is None:  # a service built on its own (tools, tests): this data dir's models
            from studio.services.models import ModelService

            self.resolve_model = ModelService(self.config, self.store).resolve
        return self.resolve_model(model_id, model_kind)

    def _dataset_folder(self, dataset_id: str) -> Path:
        if not isinstance(dataset_id, str) or not _DATASET_ID.match(dataset_id):
            raise NotFound(f"No dataset with id '{dataset_id}'.")
        if self.dataset_path is None:  # a service built on its own (tools, tests): this data dir's datasets
            from studio.services.datasets import DatasetService

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


def _require_admin(user: Any, what: str) -> None:
    if user is not None and not getattr(user, "is_admin", False):
        raise only_admins(user, what)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _check_processes(processes: int, device_choice: str) -> None:
    """Several training processes need as many GPUs, or (training on the CPU) as many cores."""
    if processes <= 1:
        return
    from engines.device import resolve_device

    if resolve_device(device_choice).startswith("cuda"):
        import torch

        have, what, other = torch.cuda.device_count(), "GPU(s)", "or start the studio with --device cpu"
    else:
        have, what, other = os.cpu_count() or 1, "CPU cores", "or train on a machine with more cores"
    if processes > have:
        raise Invalid(f"num_processes: {processes} processes need {processes} {what}; this machine has {have}. "
                      f"Use at most {have}, {other}.")
