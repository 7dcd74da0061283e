"""What every trainer shares: the run folder, the event log, checkpoints, the stop signal,
parameter checking and the `python -m engines.<kind>.train --run-dir DIR` entry point.

    run_dir.py      JobConfig, RunDir (the files below), StopSignal, atomic JSON
    events.py       events.jsonl: EventLog (the trainer appends), read_events / EventTail (the readers)
    checkpoints.py  save / list / load checkpoints, resume_training, RNG state
    params.py       user params → the kind's config dataclass (pydantic TypeAdapter); field docs
    kinds.py        TRAINERS (kind → module), trainer_spec
    entry.py        trainer_main, exit codes

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
  4. Add `"gan": "engines.gan.train"` to TRAINERS in kinds.py.
Keep the module cheap to import (torch, transformers … inside `run`): the studio imports it to
read the config class. Under several processes only rank 0 (`is_main_process()`) writes files.

Nothing here imports Gradio, FastAPI, SQLite or `studio`.
"""

from engines.training.checkpoints import (
    Checkpoint,
    current_rng_state,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_latest,
    restore_rng,
    resume_training,
    save_checkpoint,
    save_training_state,
)
from engines.training.entry import EXIT_CANCELLED, EXIT_FAILED, trainer_main
from engines.training.events import EventLog, EventTail, parse_events, read_events
from engines.training.kinds import TRAINERS, TrainerSpec, trainer_spec
from engines.training.params import describe_config, field_docs, resolve_params
from engines.training.run_dir import (
    JobConfig,
    RunDir,
    StopSignal,
    is_main_process,
    read_json,
    write_json_atomic,
)

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_FAILED",
    "TRAINERS",
    "Checkpoint",
    "EventLog",
    "EventTail",
    "JobConfig",
    "RunDir",
    "StopSignal",
    "TrainerSpec",
    "current_rng_state",
    "describe_config",
    "field_docs",
    "is_main_process",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_latest",
    "parse_events",
    "read_events",
    "read_json",
    "restore_rng",
    "resolve_params",
    "resume_training",
    "save_checkpoint",
    "save_training_state",
    "trainer_main",
    "trainer_spec",
    "write_json_atomic",
]
