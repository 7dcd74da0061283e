"""Kind `selftest`: fit a small MLP to seeded synthetic regression data.

It is a real trainer — Accelerator, AdamW, checkpoints with optimizer state, resume, SIGTERM —
just small enough to finish in seconds on a CPU, so the job runner can be tested end to end
before (and besides) the model trainers. It makes no artifact.

    accelerate launch -m engines.selftest.train --run-dir runs/<job-id>
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from engines.training import (
    RunDir,
    TrainingLoop,
    current_rng_state,
    is_main_process,
    load_latest,
    save_checkpoint,
    trainer_main,
)

IN_FEATURES = 8


@dataclass
class SelftestConfig:
    """Fit a tiny MLP to synthetic data: a fast, real trainer for testing the job runner."""

    max_steps: int = 50  # optimizer steps in total
    learning_rate: float = 0.05  # AdamW learning rate (constant)
    batch_size: int = 64  # samples per step
    seed: int = 0  # seeds the data, the initial weights and every step's batch
    save_every: int = 10  # steps between checkpoints; a final one is always saved (0: final only)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    hidden_size: int = 32  # width of the MLP's hidden layer
    num_samples: int = 512  # size of the synthetic data set
    step_delay_s: float = 0.0  # sleep after each step, so a test can stop a run half-way
    fail_at_step: int = 0  # raise an error at this step to test the failure path (0: never)

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "hidden_size", "num_samples", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"'{name}' must be at least 1.")
        if self.learning_rate <= 0:
            raise ValueError("'learning_rate' must be positive.")
        if self.save_every < 0 or self.step_delay_s < 0 or self.fail_at_step < 0:
            raise ValueError("'save_every', 'step_delay_s' and 'fail_at_step' must not be negative.")


CONFIG_CLASS = SelftestConfig


def make_data(config: SelftestConfig) -> tuple[Any, Any]:
    """X (N, 8) and y (N, 1) = a fixed random tanh network of X plus a little noise."""
    import torch

    g = torch.Generator().manual_seed(config.seed)
    x = torch.randn(config.num_samples, IN_FEATURES, generator=g)  # (N, 8)
    w1 = torch.randn(IN_FEATURES, 4, generator=g)
    w2 = torch.randn(4, 1, generator=g)
    y = torch.tanh(x @ w1) @ w2 + 0.05 * torch.randn(config.num_samples, 1, generator=g)  # (N, 1)
    return x, y


def batch_indices(config: SelftestConfig, step: int) -> Any:
    """Each step's batch depends only on (seed, step): a resumed run sees the same batches."""
    import torch

    g = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    return torch.randint(0, config.num_samples, (config.batch_size,), generator=g)


def run(config: SelftestConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    # 1. Set up: device from accelerate (ACCELERATE_USE_CPU under `--cpu`), seeded model and data.
    job = run_dir.read_job()
    accelerator = Accelerator(cpu=job.device == "cpu")
    main = accelerator.is_main_process and is_main_process()
    set_seed(config.seed)
    x, y = make_data(config)
    model = torch.nn.Sequential(
        torch.nn.Linear(IN_FEATURES, config.hidden_size),
        torch.nn.Tanh(),
        torch.nn.Linear(config.hidden_size, 1),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)

    # 2. Resume: weights, optimizer moments, RNG and step from the newest checkpoint.
    ckpt = load_latest(run_dir) if job.resume else None
    if ckpt is not None:
        model.load_state_dict(ckpt.tensors)
        optimizer.load_state_dict(ckpt.extra_state["optimizer"])
        torch.set_rng_state(ckpt.extra_state["torch_rng"])
        print(f"selftest: resumed from step {ckpt.step} ({ckpt.path.name})", flush=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    x, y = x.to(accelerator.device), y.to(accelerator.device)

    def checkpoint(step: int) -> None:
        if not main:
            return
        state = {"optimizer": optimizer.state_dict(), "step": step, **current_rng_state()}
        weights = accelerator.unwrap_model(model).state_dict()
        meta = {"kind": "selftest", "config": asdict(config)}
        path = save_checkpoint(run_dir, step, weights, state, meta=meta, keep_last=config.keep_checkpoints)
        print(f"selftest: saved {path.name}", flush=True)

    # 3. Train: one event per step, a checkpoint every save_every steps, stop on SIGTERM.
    loop = TrainingLoop(run_dir, name="selftest", start_step=ckpt.step if ckpt else 0, total_steps=config.max_steps,
                        save_every=config.save_every, checkpoint=checkpoint, resume=job.resume, main=main)  # fmt: skip
    loss_value = float("nan")
    print(
        f"selftest: training steps {loop.start_step + 1}..{config.max_steps} on {accelerator.device}", flush=True
    )
    with loop:
        for step in loop.steps():
            if step == config.fail_at_step:
                raise RuntimeError(f"selftest: failing on purpose at step {step} (fail_at_step)")
            t0 = time.perf_counter()
            idx = batch_indices(config, step).to(accelerator.device)
            loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = loss.item()
            throughput = config.batch_size / max(time.perf_counter() - t0, 1e-9)

            fields: dict[str, Any] = {"loss": loss_value, "lr": config.learning_rate}
            if loop.save_point(step):
                loop.save(step)
                if main:
                    fields["samples"] = [_write_sample(run_dir, step, model, x, y)]
            loop.log(step, **fields, throughput=round(throughput, 1), total_steps=config.max_steps)
            _wait(run_dir, config.step_delay_s)
            if loop.stop_requested(step):
                return {"status": "cancelled", "metrics": {"loss": loss_value}}

    # 4. Report: loss on the whole data set, first vs last.
    with torch.no_grad():
        eval_loss = torch.nn.functional.mse_loss(model(x), y).item()
    print(f"selftest: done, loss {loss_value:.4f}, eval_loss {eval_loss:.4f}", flush=True)
    return {"metrics": {"loss": loss_value, "eval_loss": eval_loss}, "artifact": None}


def _wait(run_dir: RunDir, seconds: float) -> None:
    """Sleep up to `seconds`, waking early on a stop request."""
    deadline = time.monotonic() + seconds
    while not run_dir.stop.requested and time.monotonic() < deadline:
        time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))


def _write_sample(run_dir: RunDir, step: int, model: Any, x: Any, y: Any) -> str:
    """A 96×96 PNG of prediction (y axis) against target (x axis): the points gather on the diagonal."""
    import torch
    from PIL import Image, ImageDraw

    with torch.no_grad():
        pred = model(x[:200]).flatten().cpu()
    target = y[:200].flatten().cpu()
    lo, hi = float(target.min()), float(target.max())
    scale = 95 / max(hi - lo, 1e-6)
    img = Image.new("RGB", (96, 96), "white")
    draw = ImageDraw.Draw(img)
    draw.line([(0, 95), (95, 0)], fill=(200, 200, 200))
    for t, p in zip(target.tolist(), pred.tolist(), strict=True):
        px, py = (t - lo) * scale, 95 - (p - lo) * scale
        if 0 <= py <= 95:
            draw.point((px, py), fill=(30, 90, 200))
    run_dir.samples_dir.mkdir(parents=True, exist_ok=True)
    rel = f"samples/step-{step}.png"
    img.save(run_dir.path / rel)
    return rel


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
