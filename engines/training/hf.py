"""The run folder for trainers built on a Hugging Face `Trainer` (TRL's KTO, DPO and reward trainers):
the Trainer keeps its own checkpoints (`checkpoints/checkpoint-N`) and resumes from them exactly;
`HFTrainerRun` turns its logs into our events, its step ends into stop checks, and finds the
checkpoint to resume from.

    hf_run = HFTrainerRun(run_dir, job)
    trainer = KTOTrainer(…, args=KTOConfig(**hf_run.trainer_args(...)), callbacks=[hf_run.callback])
    train_time_s = hf_run.train(trainer)
    if hf_run.cancelled: return {"status": "cancelled"}
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engines.training.artifacts import atomic_folder
from engines.training.events import EventLog
from engines.training.run_dir import JobConfig, RunDir


class HFTrainerRun:
    def __init__(self, run_dir: RunDir, job: JobConfig) -> None:
        from transformers import TrainerCallback

        self.run_dir = run_dir
        self.cancelled = False
        self.resume_from: str | None = None  # the Trainer's newest checkpoint folder, when resuming
        resume_step = None
        if job.resume:
            found = sorted(run_dir.checkpoints_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
            if found:
                self.resume_from, resume_step = str(found[-1]), int(found[-1].name.split("-")[1])
        self.events = EventLog(run_dir, resume_step=resume_step)
        outer = self

        class Callback(TrainerCallback):
            """Mirrors the Trainer's logs into events.jsonl and stops it (with a checkpoint) on SIGTERM."""

            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    keep = {k.replace("/", "_"): float(v) for k, v in logs.items()
                            if isinstance(v, int | float) and k not in ("epoch",)}  # fmt: skip
                    outer.events.append(state.global_step, **keep)

            def on_step_end(self, args, state, control, **kwargs):
                if run_dir.stop.requested:
                    outer.cancelled = True
                    control.should_save = True
                    control.should_training_stop = True

        self.callback = Callback()

    def trainer_args(
        self, *, max_steps: int, batch_size: int, learning_rate: float, max_length: int, save_every: int, seed: int
    ) -> dict[str, Any]:
        """The TrainingArguments every such trainer shares: checkpoints in the run folder, a log line
        per step, no reporting elsewhere, the CPU when there is no GPU."""
        import torch

        return dict(
            output_dir=str(self.run_dir.checkpoints_dir), max_steps=max_steps,
            per_device_train_batch_size=batch_size, learning_rate=learning_rate, max_length=max_length,
            logging_steps=1, report_to="none", save_strategy="steps", save_steps=save_every, save_total_limit=2,
            seed=seed, use_cpu=not torch.cuda.is_available(), disable_tqdm=True, dataloader_num_workers=0,
        )  # fmt: skip

    def train(self, trainer: Any) -> float:
        """Train (from the newest checkpoint when resuming); the seconds it took."""
        t0 = time.perf_counter()
        try:
            trainer.train(resume_from_checkpoint=self.resume_from)
        finally:
            self.events.close()
        return time.perf_counter() - t0


def loss_history(trainer: Any) -> list[dict[str, Any]]:
    """The log entries of a finished Trainer that carry a training loss, in order."""
    return [h for h in trainer.state.log_history if "loss" in h]


def loss_range(trainer: Any) -> tuple[float | None, float | None]:
    """(first, last) logged training loss of a finished Trainer."""
    history = loss_history(trainer)
    if not history:
        return None, None
    return float(history[0]["loss"]), float(history[-1]["loss"])


def save_model_folder(model: Any, tokenizer: Any, out_dir: Path, readme: str) -> None:
    """A transformers/PEFT folder (safetensors + tokenizer + README.md), written whole or not at all."""
    with atomic_folder(out_dir) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        (tmp / "README.md").write_text(readme, encoding="utf-8")

