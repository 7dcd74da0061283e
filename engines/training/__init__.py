"""What every trainer shares: the run folder, the event log, checkpoints, the stop signal,
parameter checking and the `python -m engines.<kind>.train --run-dir DIR` entry point.

    run_dir.py      JobConfig, RunDir (the files below), StopSignal, atomic JSON
    events.py       events.jsonl: EventLog (the trainer appends), read_events / EventTail (the readers)
    checkpoints.py  save / list / load checkpoints, resume_training, RNG state
    params.py       user params → the kind's config dataclass (pydantic TypeAdapter); field docs
    loop.py         TrainingLoop (the step loop's skeleton), the shared pieces of an optimizer step
    artifacts.py    artifact_dir, atomic_folder (write whole or not at all), dataset_name
    hf.py           HFTrainerRun: the same contract for trainers built on a Hugging Face Trainer (TRL)
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
     JobConfig (base_model, dataset_path, models_root, output_dir, resume …). On resume
     (`job.resume`), load the newest checkpoint (`resume_training` / `load_latest`) and go on
     from its step + 1. Run the steps in a `TrainingLoop` (loop.py): it logs the events, saves a
     checkpoint every `save_every` steps and at the end, and on `run_dir.stop.requested` saves one
     so that the trainer can return {"status": "cancelled"}. Return
     {"metrics": {...}, "artifact": {"type": "gan", "path": …, "base_model": …, "name": …} | None};
     the artifact goes to `artifact_dir(job, run_dir)` (the job's output_dir), written through
     `atomic_folder`; the studio registers it as an `adapters` row.
  3. End the module with `if __name__ == "__main__": trainer_main(run, CONFIG_CLASS)`.
  4. Add `"gan": "engines.gan.train"` to TRAINERS in kinds.py.
  5. Optionally, `def check_dataset(dataset_path: Path | None) -> None` raising ValueError for data
     the trainer cannot use: the studio calls it before the job starts and answers a 422.
Keep the module cheap to import (torch, transformers … inside `run`): the studio imports it to
read the config class. Under several processes only rank 0 (`is_main_process()`) writes files.

Nothing here imports Gradio, FastAPI, SQLite or `studio`.
"""

from engines.training.artifacts import artifact_dir, atomic_folder, dataset_name
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
from engines.training.hf import HFTrainerRun, loss_history, loss_range, save_model_folder
from engines.training.kinds import TRAINERS, TrainerSpec, trainer_spec
from engines.training.loop import (
    TrainingLoop,
    accumulated_step,
    adamw_with_schedule,
    any_process,
    keeps_torch_threads,
    mean_over_processes,
    one_thread_if_tiny,
    this_process_share,
)
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
    "HFTrainerRun",
    "JobConfig",
    "RunDir",
    "StopSignal",
    "TrainerSpec",
    "TrainingLoop",
    "accumulated_step",
    "adamw_with_schedule",
    "artifact_dir",
    "atomic_folder",
    "current_rng_state",
    "dataset_name",
    "describe_config",
    "field_docs",
    "is_main_process",
    "keeps_torch_threads",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_latest",
    "loss_history",
    "loss_range",
    "one_thread_if_tiny",
    "parse_events",
    "read_events",
    "read_json",
    "restore_rng",
    "resolve_params",
    "resume_training",
    "save_checkpoint",
    "save_model_folder",
    "save_training_state",
    "this_process_share",
    "any_process",
    "mean_over_processes",
    "trainer_main",
    "trainer_spec",
    "write_json_atomic",
]
