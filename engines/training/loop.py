"""The skeleton of a step-by-step trainer (selftest, gan, text-lora, image-lora), and the pieces of
an optimizer step that more than one of them takes:

    loop = TrainingLoop(run_dir, name="text-lora", start_step=ckpt.step if ckpt else 0,
                        total_steps=n, save_every=config.save_every, checkpoint=save, resume=job.resume)
    with loop:                                   # the event log: opened here, closed on the way out
        for step in loop.steps():                # start_step + 1 … total_steps
            loss = …one optimizer step…
            fields = {"loss": loss}
            if loop.save_point(step):            # every save_every steps, and the last
                loop.save(step)                  # → checkpoint(step), once this step's event is logged
                fields["eval_loss"] = …
            loop.log(step, **fields)             # one event (rank 0 only)
            if loop.stop_requested(step):        # SIGTERM/SIGINT: a checkpoint unless one was just saved
                return {"status": "cancelled", …}

A checkpoint is written right after its step's event, never before: a run killed between the two
redoes that step on resume instead of losing its event.

Resume: load the newest checkpoint first (`resume_training`, or `load_latest` for a trainer with
its own state layout) and start the loop at its step; the event log then drops whatever the
interrupted run logged after that checkpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from engines.registry import TINY_MODEL_PARAMS
from engines.training.events import EventLog
from engines.training.run_dir import RunDir, is_main_process


class TrainingLoop:
    def __init__(
        self,
        run_dir: RunDir,
        *,
        name: str,
        start_step: int,
        total_steps: int,
        save_every: int,
        checkpoint: Callable[[int], Any],
        resume: bool,
        main: bool | None = None,
        agree: Callable[[bool], bool] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.name = name  # the kind, as it starts the trainer's lines in train.log
        self.start_step = start_step
        self.total_steps = total_steps
        self.save_every = save_every  # 0: only at the end
        self.checkpoint = checkpoint  # step → writes a checkpoint (rank 0 only: it checks itself)
        self.resume = resume
        self.main = is_main_process() if main is None else main
        self.saved_at = start_step  # the step of the newest checkpoint
        self.events: EventLog | None = None
        self._pending: int | None = None  # a checkpoint asked for, written once its step's event is logged
        # several processes: whether any of them was asked to stop (all stop at the same step, or
        # the others would wait forever in the next step's gradient exchange)
        self.agree = agree or (lambda flag: flag)

    def __enter__(self) -> TrainingLoop:
        resume_step = self.start_step if self.resume else None
        if self.main:  # one writer: another process opening the log would cut what rank 0 appends on resume
            self.events = EventLog(self.run_dir, resume_step=resume_step, tensorboard=True)
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self._write_pending()
        if self.events is not None:
            self.events.close()

    def steps(self) -> Iterator[int]:
        return iter(range(self.start_step + 1, self.total_steps + 1))

    def save_point(self, step: int) -> bool:
        return bool(self.save_every and step % self.save_every == 0) or step == self.total_steps

    def save(self, step: int) -> None:
        """Checkpoint `step` as soon as its event is logged (see the module docstring)."""
        self._pending = step

    def log(self, step: int, **fields: Any) -> None:
        if self.main:
            assert self.events is not None, "log() inside `with loop:`"
            self.events.append(step, **fields)
        self._write_pending()

    def _write_pending(self) -> None:
        if self._pending is not None:
            step, self._pending = self._pending, None
            self.checkpoint(step)
            self.saved_at = step

    def stop_requested(self, step: int) -> bool:
        """True once a stop was asked for, after saving this step unless it was just saved."""
        if not self.agree(self.run_dir.stop.requested):
            return False
        self._write_pending()
        if self.saved_at != step:
            self.save(step)
            self._write_pending()
        print(f"{self.name}: stopped at step {step} on request", flush=True)
        return True


# -- the pieces of an optimizer step -------------------------------------------------------------
def accumulated_step(
    accelerator: Any,
    batches: Iterable[Any],
    loss_of: Callable[[Any], Any],
    *,
    accum: int,
    params: list[Any],
    max_grad_norm: float,
    optimizer: Any,
    scheduler: Any,
) -> float:
    """One optimizer step over `accum` micro-batches (each loss scaled by 1/accum, under autocast),
    gradients clipped to `max_grad_norm` (0: not), then the schedule; returns the step's loss."""
    total = 0.0
    for batch in batches:
        with accelerator.autocast():
            loss = loss_of(batch) / accum
        accelerator.backward(loss)
        total += loss.item()
    if max_grad_norm:
        accelerator.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return total


def mean_over_processes(accelerator: Any, value: float) -> float:
    """`value` averaged over the processes training together (itself when alone)."""
    if accelerator.num_processes == 1:
        return value
    import torch

    return float(accelerator.reduce(torch.tensor([value], device=accelerator.device), reduction="mean").item())


def any_process(accelerator: Any, flag: bool) -> bool:
    """Whether `flag` is set in any of the processes training together (a tiny all-reduce per call)."""
    if accelerator.num_processes == 1:
        return flag
    import torch

    return bool(accelerator.reduce(torch.tensor([int(flag)], device=accelerator.device), reduction="sum").item())


def this_process_share(indices: list[int], accelerator: Any) -> list[int]:
    """The micro-batch items this process trains on when several do (at least one each)."""
    return indices[accelerator.process_index :: accelerator.num_processes] or indices[:1]


def adamw_with_schedule(
    params: list[Any], *, lr: float, weight_decay: float, schedule: str, warmup_steps: int, total_steps: int
) -> tuple[Any, Any]:
    """(AdamW, transformers' learning-rate schedule); 'constant' keeps the warm-up."""
    import torch
    from transformers import get_scheduler

    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = get_scheduler(
        schedule if schedule != "constant" else "constant_with_warmup",
        optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps,
    )  # fmt: skip
    return optimizer, scheduler


# -- CPU threads ---------------------------------------------------------------------------------
def one_thread_if_tiny(num_params: int, on_cpu: bool) -> None:
    """A model under TINY_MODEL_PARAMS trains fastest on one CPU thread: syncing threads costs more
    than its small matrices save."""
    if on_cpu and num_params < TINY_MODEL_PARAMS:
        import torch

        torch.set_num_threads(1)


def keeps_torch_threads(run: Callable[..., Any]) -> Callable[..., Any]:
    """Decorates a trainer's `run`: torch's thread count is as the caller had it once it returns (a
    run in-process — a test, the bench — must not leave its one-thread setting behind)."""

    @functools.wraps(run)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import torch

        threads = torch.get_num_threads()
        try:
            return run(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper
