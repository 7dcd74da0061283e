"""What every trainer shares: the run folder, the event log, checkpoints, the stop signal,
parameter checking and the `python -m engines.<kind>.train --run-dir DIR` entry point.

The studio starts a trainer as a child process and talks to it only through files in its
run folder (`runs/<job-id>/`):

    config.json       the full resolved job (JobConfig): kind, params, base_model, dataset_path, resume …
    started.json      written by the trainer once it is up (pid); no result + started = it was killed
    events.jsonl      one JSON line per logged step: {"step", "time", "loss", …, "samples"?: [paths]}
    tensorboard/      the same scalars as TensorBoard event files
    checkpoints/step-<N>/   model.safetensors + state.pt (optimizer, rng …) + checkpoint.json
    samples/          images/text the trainer makes along the way (paths relative to the run dir)
    train.log         stdout + stderr of the whole process tree (written by the runner)
    result.json       {"status": "completed"|"cancelled"|"failed", "metrics", "artifact"}

Adding a kind (e.g. `gan`):
  1. Write `engines/gan/train.py` with a `@dataclass GanConfig` — a commented default on every
     field (the comment is the help text the UI and `GET /jobs/kinds` show); range checks in
     `__post_init__` raising ValueError — and `CONFIG_CLASS = GanConfig`.
  2. `def run(config: GanConfig, run_dir: RunDir) -> dict`. `run_dir.read_job()` gives the
     JobConfig (base_model, dataset_path, output_dir, resume …). Each step: `EventLog.append`
     (pass `resume_step=` when resuming), `save_checkpoint` now and then, and when
     `run_dir.stop.requested`: save a checkpoint and return {"status": "cancelled"}. On resume
     (`job.resume`), load `latest_checkpoint(run_dir)` and go on from its step + 1. Return
     {"metrics": {...}, "artifact": {"type": "gan", "path": …, "base_model": …, "name": …} | None};
     the artifact path is absolute or relative to the run folder, inside the data dir
     (`job.output_dir` is meant for it); the studio registers it as an `adapters` row.
  3. End the module with `if __name__ == "__main__": trainer_main(run, CONFIG_CLASS)`.
  4. Add `"gan": "engines.gan.train"` to TRAINERS below.
Keep the module cheap to import (torch, transformers … inside `run`): the studio imports it to
read the config class. Under several processes only rank 0 (`is_main_process()`) writes files.

Nothing here imports Gradio, FastAPI, SQLite or `studio`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import io
import json
import os
import shutil
import signal
import sys
import time
import tokenize
import traceback
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# job kind → trainer module. The module exposes CONFIG_CLASS and run(config, run_dir).
TRAINERS: dict[str, str] = {
    "selftest": "engines.selftest.train",
    "gan": "engines.gan.train",
    "text-lora": "engines.text.train",
    "text-feedback": "engines.text.feedback_train",
    "reward": "engines.text.reward_train",
    "image-lora": "engines.image.train",
    "export": "engines.text.export",
}

EXIT_FAILED = 1  # run() raised; result.json says "failed"
EXIT_CANCELLED = 128 + signal.SIGTERM  # stopped on request after saving a checkpoint (shell-style 143)


# -- the job a run folder holds ------------------------------------------------------------------
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
    device: str = "auto"  # the studio's --device
    offline: bool = False  # never contact a model hub

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


# -- events ------------------------------------------------------------------------------------
def read_events(path: Path, since_step: int = 0) -> list[dict[str, Any]]:
    """Events with step > since_step; a half-written last line (trainer still writing) is skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and isinstance(event.get("step"), int) and event["step"] > since_step:
            out.append(event)
    return out


class EventLog:
    """Appends one JSON line per logged step and mirrors numbers to TensorBoard.

    On resume pass `resume_step` (the checkpoint's step): events logged after that checkpoint by
    the interrupted run are dropped, so the log reads as one run with no repeated step.
    A trainer may log `total_steps` once it knows it (epoch-based runs); the studio picks it up.
    """

    SYNC_EVERY_S = 1.0  # how often the log is fsync'ed while training

    def __init__(self, run_dir: RunDir, *, resume_step: int | None = None, tensorboard: bool = True):
        self.path = run_dir.events_path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [json.dumps(e) + "\n" for e in read_events(self.path) if e["step"] <= resume_step]
            tmp = self.path.with_name(".events.jsonl.tmp")
            tmp.write_text("".join(kept), encoding="utf-8")
            os.replace(tmp, self.path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._synced_at = time.monotonic()
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1  # hide the orphaned steps
            self._writer = SummaryWriter(log_dir=str(run_dir.tensorboard_dir), purge_step=purge)

    def append(self, step: int, **fields: Any) -> dict[str, Any]:
        event = {"step": int(step), "time": round(time.time(), 3), **fields}
        self._file.write(json.dumps(event, default=_jsonable) + "\n")
        self._file.flush()  # visible to the studio at once; on disk within SYNC_EVERY_S
        if self._writer is not None:
            for key, value in fields.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._writer.add_scalar(f"train/{key}", value, step)
        now = time.monotonic()
        if now - self._synced_at >= self.SYNC_EVERY_S:
            self.sync()
            self._synced_at = now
        return event

    def sync(self) -> None:
        """fsync the log and flush TensorBoard: done at most once a second while training (a sync
        per step cost more than a small model's step) and at close. A killed process loses nothing it
        wrote: the lines are in the OS page cache; only a power cut can cost the last second."""
        os.fsync(self._file.fileno())
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # 0-d tensors and numpy scalars
        return value.item()
    return str(value)


# -- checkpoints -------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    step: int
    path: Path
    tensors: dict[str, Any]  # model weights (from model.safetensors)
    extra_state: dict[str, Any]  # optimizer, scheduler, rng … (from state.pt, loaded weights_only)
    meta: dict[str, Any]  # checkpoint.json: step, time and whatever the trainer passed


def _checkpoints_dir(run_dir: RunDir | Path) -> Path:
    return run_dir.checkpoints_dir if isinstance(run_dir, RunDir) else Path(run_dir) / "checkpoints"


def save_checkpoint(
    run_dir: RunDir | Path,
    step: int,
    tensors: dict[str, Any],
    extra_state: dict[str, Any] | None = None,
    *,
    meta: dict[str, Any] | None = None,
    keep_last: int = 2,
) -> Path:
    """Write `checkpoints/step-<step>/` atomically (temp folder, then rename); keep the newest `keep_last`.

    `tensors` go to safetensors; `extra_state` (optimizer/scheduler state_dicts, torch rng state,
    plain numbers) goes through torch.save and must load with `weights_only=True`.
    """
    import torch
    from safetensors.torch import save_file

    root = _checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    seen: set[int] = set()
    flat = {}
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        if t.data_ptr() in seen:  # tied weights: safetensors refuses shared storage
            t = t.clone()
        seen.add(t.data_ptr())
        flat[name] = t
    save_file(flat, str(tmp / "model.safetensors"))
    torch.save(extra_state or {}, tmp / "state.pt")
    write_json_atomic(tmp / "checkpoint.json", {"step": step, "time": time.time(), **(meta or {})})
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())

    if final.exists():  # re-saving the same step (e.g. stop right after a periodic save)
        shutil.rmtree(final)
    os.replace(tmp, final)
    _rotate(root, keep_last, keep=final)
    return final


def _rotate(root: Path, keep_last: int, keep: Path) -> None:
    steps = sorted(_list_checkpoints(root), reverse=True)
    for _, path in steps[max(keep_last, 1) :]:
        if path != keep:
            shutil.rmtree(path, ignore_errors=True)
    for stale in root.glob(".tmp-step-*"):  # left by a process killed mid-save
        if not stale.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(stale, ignore_errors=True)


def _list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    out = []
    for p in root.glob("step-*"):
        suffix = p.name.removeprefix("step-")
        if suffix.isdigit() and (p / "checkpoint.json").exists():
            out.append((int(suffix), p))
    return out


def list_checkpoints(run_dir: RunDir | Path) -> list[tuple[int, Path]]:
    return sorted(_list_checkpoints(_checkpoints_dir(run_dir)))


def latest_checkpoint(run_dir: RunDir | Path) -> tuple[int, Path] | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def load_checkpoint(path: Path, device: str = "cpu") -> Checkpoint:
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_json(path / "checkpoint.json") or {}
    tensors = load_file(str(path / "model.safetensors"), device=device)
    extra = torch.load(path / "state.pt", map_location=device, weights_only=True)
    return Checkpoint(step=int(meta.get("step", 0)), path=path, tensors=tensors, extra_state=extra, meta=meta)


def resume_training(run_dir: RunDir | Path, model: Any, optimizer: Any, scheduler: Any) -> Checkpoint | None:
    """Load the newest checkpoint's trainable weights and optimizer/scheduler states into place.

    Returns the checkpoint (its step, meta and extra state — restore its RNG with `restore_rng`
    once the model is ready), or None when there is none. A checkpoint that lacks some of the
    model's trainable weights is refused: it belongs to another configuration."""
    found = latest_checkpoint(run_dir)
    if found is None:
        return None
    ckpt = load_checkpoint(found[1])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = trainable - set(ckpt.tensors)
    if missing:
        raise ValueError(f"Checkpoint {found[1].name} does not match this model ({len(missing)} weights missing).")
    model.load_state_dict(ckpt.tensors, strict=False)
    optimizer.load_state_dict(ckpt.extra_state["optimizer"])
    scheduler.load_state_dict(ckpt.extra_state["scheduler"])
    return ckpt


def current_rng_state() -> dict[str, Any]:
    """The random state a checkpoint needs for an exact resume (CPU, and every GPU if any)."""
    import torch

    state: dict[str, Any] = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch_rng"])
    if torch.cuda.is_available() and state.get("cuda_rng"):
        torch.cuda.set_rng_state_all(state["cuda_rng"])


# -- stopping ----------------------------------------------------------------------------------
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


# -- parameters --------------------------------------------------------------------------------
def resolve_params(config_cls: type, params: dict[str, Any] | None) -> Any:
    """Build `config_cls` from user params: unknown names and wrong types raise ValueError."""
    params = dict(params or {})
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ValueError(
            f"Unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)}. "
            f"Accepted: {', '.join(fields)}."
        )
    hints = typing.get_type_hints(config_cls)
    values = {name: _coerce(name, hints.get(name, Any), value) for name, value in params.items()}
    return config_cls(**values)  # __post_init__ may raise ValueError for out-of-range values


def _coerce(name: str, tp: Any, value: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(name, arg, value)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if len(errors) == 1 else f"'{name}' has the wrong type: {value!r}")
    if origin is Literal:
        if value not in args:
            raise ValueError(f"'{name}' must be one of {', '.join(repr(a) for a in args)}, not {value!r}.")
        return value
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ValueError(f"'{name}' must be a list, not {value!r}.")
        item = args[0] if args else Any
        return [_coerce(name, item, v) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"'{name}' must be true or false, not {value!r}.")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError(f"'{name}' must be a whole number, not {value!r}.")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ValueError(f"'{name}' must be a number, not {value!r}.")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"'{name}' must be text, not {value!r}.")
    return value


def field_docs(config_cls: type) -> dict[str, str]:
    """Each field's trailing `# comment` in the dataclass source (or metadata["doc"])."""
    docs = {f.name: str(f.metadata.get("doc", "")) for f in dataclasses.fields(config_cls)}
    try:
        source = inspect.getsource(config_cls)
    except (OSError, TypeError):
        return docs
    pending: str | None = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NL or tok.type == tokenize.NEWLINE:
            pending = None
        elif tok.type == tokenize.NAME and pending is None and tok.start[1] > 0 and tok.string in docs:
            pending = tok.string if tok.line.strip().startswith(tok.string) else None
        elif tok.type == tokenize.COMMENT and pending and not docs[pending]:
            docs[pending] = tok.string.lstrip("#").strip()
            pending = None
    return docs


def describe_config(config_cls: type) -> list[dict[str, Any]]:
    """[{name, type, default, doc}] for forms and the API."""
    docs = field_docs(config_cls)
    hints = typing.get_type_hints(config_cls)
    defaults = dataclasses.asdict(config_cls())
    return [
        {
            "name": f.name,
            "type": _type_name(hints.get(f.name, Any)),
            "default": defaults[f.name],
            "doc": docs.get(f.name, ""),
        }
        for f in dataclasses.fields(config_cls)
        if f.init
    ]


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


# -- the registry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainerSpec:
    kind: str
    module: str  # run as `accelerate launch -m <module> --run-dir DIR`
    config_cls: type
    run: Callable[[Any, RunDir], dict[str, Any]]

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.config_cls.__doc__ or "").split("\n\n")[0]


def trainer_spec(kind: str) -> TrainerSpec:
    """KeyError for an unknown kind; ImportError/AttributeError for a broken trainer module."""
    module_name = TRAINERS[kind]
    module = importlib.import_module(module_name)
    return TrainerSpec(kind=kind, module=module_name, config_cls=module.CONFIG_CLASS, run=module.run)


# -- the entry point ---------------------------------------------------------------------------
def trainer_main(
    run_fn: Callable[[Any, RunDir], dict[str, Any] | None], config_cls: type, argv: list[str] | None = None
) -> typing.NoReturn:
    """`python -m engines.<kind>.train --run-dir DIR`: read config.json, run, write result.json.

    Exit codes: 0 completed, EXIT_CANCELLED stopped by a signal (checkpoint saved),
    EXIT_FAILED run raised (traceback on stderr → train.log). The studio trusts result.json.
    """
    parser = argparse.ArgumentParser(description=f"Train one job ({config_cls.__name__}).")
    parser.add_argument(
        "--run-dir", required=True, type=Path, help="the job's run folder (holds config.json)"
    )
    args = parser.parse_args(argv)
    run_dir = RunDir(args.run_dir)
    run_dir.stop = StopSignal().install()
    main = is_main_process()
    if main:
        run_dir.mark_started()
    try:
        config = resolve_params(config_cls, run_dir.read_job().params)
        result = dict(run_fn(config, run_dir) or {})
    except Exception as exc:
        traceback.print_exc()
        sys.stderr.flush()
        if main:
            run_dir.write_result({"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]})
        sys.exit(EXIT_FAILED)
    status = result.get("status") or "completed"
    if main:
        run_dir.write_result(
            {"status": status, "metrics": result.get("metrics") or {}, "artifact": result.get("artifact")}
        )
    sys.stdout.flush()
    sys.exit(0 if status == "completed" else EXIT_CANCELLED)
