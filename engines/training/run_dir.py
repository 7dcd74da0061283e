"""A job's run folder (`runs/<job-id>/`): the files the studio and a trainer exchange, the job they
hold (JobConfig) and the stop signal the trainer checks once a step."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.training.events import read_events


@dataclass
class JobConfig:
    """The full resolved job, written by the studio to `config.json` before the trainer starts."""

    job_id: str  # also the run folder's name
    kind: str  # a key of TRAINERS
    params: dict[str, Any] = field(default_factory=dict)  # the kind's config dataclass, as a dict
    base_model: str | None = None  # model id the trainer starts from (None: the kind's default)
    base_model_path: str | None = None  # folder of a trained base model, resolved by the studio
    dataset_id: str | None = None  # the studio's dataset id (informational)
    dataset_path: str | None = None  # absolute path of the dataset folder, None for kinds without data
    resume: bool = False  # continue from the newest checkpoint instead of starting over
    output_dir: str | None = None  # where a trainer may put its artifact (outside the run folder)
    models_root: str | None = None  # the data dir's models/ folder: starter, local and trained models
    device: str = "auto"  # the studio's --device
    offline: bool = False  # never contact a model hub

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def models_dir(self) -> Path:
        """`models_root` as a Path; ValueError when the job names none (the studio always does)."""
        if not self.models_root:
            raise ValueError("config.json names no models_root: the trainer cannot find its base model.")
        return Path(self.models_root)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write to a temp file, fsync, rename: a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any | None:
    """The parsed file, or None when it is missing or not (yet) valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


class RunDir:
    """One job's folder. `stop` is the trainer's StopSignal (a never-set one until installed)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.stop = StopSignal()

    config_path = property(lambda self: self.path / "config.json")
    started_path = property(lambda self: self.path / "started.json")
    events_path = property(lambda self: self.path / "events.jsonl")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    samples_dir = property(lambda self: self.path / "samples")
    tensorboard_dir = property(lambda self: self.path / "tensorboard")
    log_path = property(lambda self: self.path / "train.log")
    result_path = property(lambda self: self.path / "result.json")

    def read_job(self) -> JobConfig:
        data = read_json(self.config_path)
        if not isinstance(data, dict):
            raise FileNotFoundError(f"{self.config_path} is missing or not valid JSON")
        return JobConfig.from_dict(data)

    def write_job(self, job: JobConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.config_path, job.to_dict())

    def read_result(self) -> dict[str, Any] | None:
        data = read_json(self.result_path)
        return data if isinstance(data, dict) else None

    def write_result(self, result: dict[str, Any]) -> None:
        write_json_atomic(self.result_path, result)

    def mark_started(self) -> None:
        write_json_atomic(self.started_path, {"pid": os.getpid(), "time": time.time()})

    def events(self, since_step: int = 0) -> list[dict[str, Any]]:
        return read_events(self.events_path, since_step)


def is_main_process() -> bool:
    """Rank 0 under `accelerate launch` (and when run directly): the one that writes files."""
    return int(os.environ.get("RANK", "0")) == 0


class StopSignal:
    """Turns SIGTERM/SIGINT into a flag the training loop checks once per step.

    The trainer then saves a checkpoint and returns {"status": "cancelled"}; trainer_main exits
    with EXIT_CANCELLED. A second SIGINT falls back to Python's KeyboardInterrupt.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None

    def install(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> StopSignal:
        for signum in signals:
            signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: types.FrameType | None) -> None:
        self.requested = True
        self.signum = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
