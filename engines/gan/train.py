"""Kind `gan`: train a DCGAN from scratch on an image dataset.

    accelerate launch -m engines.gan.train --run-dir runs/<job-id>

The dataset (a studio image folder: `metadata.jsonl` + PNGs) is resized and centre-cropped to
`resolution` once and kept in memory as uint8; "flip" is applied per batch, the other
augmentations ("crop", "rotate", "color") are baked into a few augmented copies of each image.
Every step's batch, flips and noise depend only on (seed, step), and the checkpoints hold both
networks (batch-norm statistics included), the generator's EMA and both Adam states, so a resumed
run repeats the uninterrupted one. Samples, scores and the artifact are the EMA generator's.

Each logged step is an event with `loss_g`, `loss_d`, `d_x` (D's mean belief that real images
are real), `d_g_z` (… that generated ones are) and `loss` (= loss_g, for the generic plot).
Every `save_every` steps: a checkpoint and an 8 × 8 sample grid of fixed latents in `samples/`.
At step 0 and every eval/checkpoint: `quality` (see engines/gan/quality.py — KID in a fixed
random-feature space; lower is better; comparable within one dataset only) and `diversity`, and
on shapes-world data (the demo dataset) `clean_share`: the share of samples the shapes detector
reads as a plain background with one sharp object — the number that says the GAN paints shapes
rather than blobs on noise (the feature score improves long before that).
The artifact is `generator.safetensors` + `config.json` in the job's output folder.

With captions that repeat (the demo's "a red circle on a blue background") the GAN is conditional
on them (`conditional`, model.py), and it samples, scores and draws its grids at the truncation ψ
it ships with (`truncation`). What each default buys on the demo shapes, measured: docs/gan.md.
After ESTIMATE_AFTER steps train.log says how long the rest will take.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engines.augment import validate_augment
from engines.gan.artifact import prefix, strip, write_artifact
from engines.gan.train_data import (
    CONDITIONAL,
    dataset_classes,
    fixed_labels,
    fixed_latents,
    load_dataset,
    step_batch,
    step_labels,
)
from engines.training import (
    RunDir,
    TrainingLoop,
    artifact_dir,
    atomic_folder,
    is_main_process,
    keeps_torch_threads,
    load_latest,
    save_checkpoint,
    trainer_main,
)

RESOLUTIONS = (32, 64, 128)
GRID_SAMPLES = 64  # fixed latents shown in every sample grid (8 × 8)
ESTIMATE_AFTER = 50  # steps timed before train.log says how long the rest will take
SMALL_WIDTH_AT_32PX = 32  # default ngf/ndf at 32 px: a quarter of the compute of the paper's 64


@dataclass
class GanTrainConfig:
    """Train a DCGAN (Radford et al. 2015) from scratch on an image dataset; makes a GAN to generate with."""

    resolution: int = 32  # image size in pixels: 32, 64 or 128 (64+ is slow without a GPU)
    max_steps: int = 2500  # optimizer steps (one D and one G update each): ≈ 16 min on one CPU thread at 32 px, 9–12 on two
    epochs: float = 0.0  # if > 0: train for this many passes over the dataset instead of max_steps
    batch_size: int = 64  # images per step
    learning_rate: float = 2e-4  # Adam learning rate of both networks (the paper's 0.0002)
    lr_schedule: str = "linear"  # "linear": constant for the first half, then down to 0 (pix2pix's); or "constant"
    beta1: float = 0.5  # Adam β1 (the paper's 0.5; the usual 0.9 makes GAN training oscillate)
    nz: int = 100  # size of the latent vector z
    ngf: int | None = None  # generator width; empty: 64 as in the paper, 32 at 32 px (fast on a CPU)
    ndf: int | None = None  # discriminator width; empty: 64 as in the paper, 32 at 32 px
    upsample: str = "resize"  # generator ↑2: "resize" (nearest + conv: flat areas come out flat) or "transpose" (the paper's)
    augment: list[str] = field(default_factory=lambda: ["flip"])  # any of flip, rotate, crop, color
    r1_gamma: float = 1.0  # weight of the R1 penalty on D's gradient at real images (0: off); see stabilize.py
    ema_decay: float = 0.999  # the generator shown and saved: an EMA of its weights with this decay (0: off)
    translate: float = 0.125  # every image D sees, real or generated, shifted by up to this share of its side (0: off)
    conditional: str = "auto"  # captions as classes: "auto" (when they repeat, as the demo's do), "on" or "off"
    depth: int = 2  # convolutions per resolution in each network: 2 adds a 3×3 one at each (cleaner images); 1 is the paper's DCGAN
    conditioning: str = "classes"  # a class one-hot ("classes") or as its words at their places ("words", shared by captions)
    truncation: float = 0.3  # ψ the trained GAN samples with by default (and is scored at): z × ψ; 1 = plain
    seed: int = 0  # seeds the weights, every batch and the noise: the same seed gives the same GAN
    save_every: int = 200  # steps between checkpoints and sample grids; a final one is always saved
    eval_every: int = 200  # steps between quality scores (always at step 0, checkpoints and the end)
    quality_samples: int = 256  # generated (and at most as many real) images the quality score compares
    log_every: int = 5  # steps between events (losses are averaged over the steps in between)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    name: str = ""  # display name of the trained GAN (empty: "DCGAN <res> px · <dataset name>")

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"'resolution' must be 32, 64 or 128, not {self.resolution}.")
        for name in ("max_steps", "batch_size", "nz", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"'{name}' must be at least 1.")
        if self.batch_size > 1024:
            raise ValueError("'batch_size' must be at most 1024.")
        for name in ("ngf", "ndf"):
            value = getattr(self, name)
            if value is not None and not 4 <= value <= 512:
                raise ValueError(f"'{name}' must be between 4 and 512 (or empty for the default).")
        if self.epochs < 0 or self.save_every < 0 or self.eval_every < 0 or self.r1_gamma < 0:
            raise ValueError("'epochs', 'save_every', 'eval_every' and 'r1_gamma' must not be negative.")
        if not 0 <= self.translate <= 0.5:
            raise ValueError("'translate' must be between 0 and 0.5 (a share of the image's side; 0: off).")
        if not 0 <= self.ema_decay < 1:
            raise ValueError("'ema_decay' must be in [0, 1): 0 turns the average off, 0.999 is usual.")
        if not 0 < self.learning_rate < 1:
            raise ValueError("'learning_rate' must be between 0 and 1.")
        if self.lr_schedule not in ("constant", "linear"):
            raise ValueError("'lr_schedule' must be 'constant' or 'linear'.")
        if not 0 <= self.beta1 < 1:
            raise ValueError("'beta1' must be in [0, 1).")
        if not 8 <= self.quality_samples <= 10_000:
            raise ValueError("'quality_samples' must be between 8 and 10000.")
        if self.conditional not in CONDITIONAL:
            raise ValueError("'conditional' must be 'auto', 'on' or 'off'.")
        if not 0 <= self.truncation <= 1:
            raise ValueError("'truncation' must be between 0 and 1 (1: no truncation).")
        if self.conditioning not in ("words", "classes"):
            raise ValueError("'conditioning' must be 'words' or 'classes'.")
        if not 1 <= self.depth <= 4:
            raise ValueError("'depth' must be between 1 and 4 (convolutions per resolution; 1 is the paper's DCGAN).")
        if self.upsample not in ("transpose", "resize"):
            raise ValueError("'upsample' must be 'transpose' or 'resize'.")
        if len(self.name) > 200:
            raise ValueError("'name' must be at most 200 characters.")
        self.augment = validate_augment(self.augment)

    def model_config(self, classes: list[str] | None = None):
        from engines.gan.model import GanConfig

        small = self.resolution == 32
        default = SMALL_WIDTH_AT_32PX if small else 64
        return GanConfig(
            resolution=self.resolution,
            nz=self.nz,
            ngf=self.ngf or default,
            ndf=self.ndf or default,
            upsample=self.upsample,
            classes=list(classes or []),
            truncation=self.truncation,
            conditioning=self.conditioning,
            depth=self.depth,
        )


CONFIG_CLASS = GanTrainConfig


# -- the run -------------------------------------------------------------------------------------
@keeps_torch_threads
def run(config: GanTrainConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch

    from engines.device import idle_cpu_threads, resolve_device

    # 1. Set up: device (and CPU threads), data, networks, optimizers, fixed latents, the scorer.
    job = run_dir.read_job()
    if not job.dataset_path:
        raise ValueError(
            "A gan job needs an image dataset: pick one (or create the demo dataset in the GAN tab)."
        )
    device = resolve_device(job.device if job.device in ("cpu", "cuda", "mps") else "auto")
    if device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(idle_cpu_threads())
    return _train(config, run_dir, job, device)


def learning_rate_at(config: GanTrainConfig, step: int, total_steps: int) -> float:
    """The rate of step `step` (1-based): constant, or with "linear" constant for the first half and
    then falling linearly to 0 at the last step (a function of the step alone: resume is exact)."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    return config.learning_rate * min(1.0, 2.0 * (total_steps - step + 1) / total_steps)


def _train(config: GanTrainConfig, run_dir: RunDir, job: Any, device: str) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from engines.gan.generate import image_grid
    from engines.gan.model import build_models
    from engines.gan.quality import QualityScorer
    from engines.gan.stabilize import discriminator_loss, ema_generator, translate

    main = is_main_process()
    t_load = time.perf_counter()
    train_images, plain_images, dataset_name = load_dataset(
        Path(job.dataset_path), config.resolution, config.augment, config.seed
    )
    classes, labels = dataset_classes(Path(job.dataset_path), config.conditional)
    model_cfg = config.model_config(classes)
    num_images = train_images.shape[0]
    train_labels = None if labels is None else labels.repeat_interleave(num_images // len(labels))
    total_steps = config.max_steps
    if config.epochs > 0:
        total_steps = max(1, math.ceil(config.epochs * num_images / config.batch_size))
    where = f"cpu, {torch.get_num_threads()} thread(s)" if device == "cpu" else device
    print(
        f"gan: {plain_images.shape[0]} images ({num_images} with augmentations) at {config.resolution} px "
        f"loaded in {time.perf_counter() - t_load:.1f} s; {total_steps} steps on {where}; "
        + (f"conditional on {len(classes)} classes (the captions)" if classes else "unconditional"),
        flush=True,
    )
    train_images = train_images.to(device)

    generator, discriminator = build_models(model_cfg, seed=config.seed)
    generator.to(device).train()
    discriminator.to(device).train()
    # oneDNN runs these convolutions faster channels-last (measured: a DCGAN step at 32 px, batch 64,
    # one thread, 0.09 s vs 0.11 s); the values are the same, only the layout in memory differs
    layout = torch.channels_last if device == "cpu" else torch.contiguous_format
    generator.to(memory_format=layout)
    discriminator.to(memory_format=layout)
    ema = ema_generator(generator, config.ema_decay)  # what users get: the average (None: the generator)
    shown = ema.module.eval() if ema is not None else generator
    betas = (config.beta1, 0.999)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.learning_rate, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.learning_rate, betas=betas)
    grid_z = fixed_latents(config.seed, GRID_SAMPLES, config.nz, salt=1).to(device)
    eval_z = fixed_latents(config.seed, config.quality_samples, config.nz, salt=2).to(device)
    grid_y = eval_y = None
    if train_labels is not None:
        grid_y = fixed_labels(config.seed, GRID_SAMPLES, train_labels, salt=1).to(device)
        eval_y = fixed_labels(config.seed, config.quality_samples, train_labels, salt=2).to(device)
    real_ref = plain_images[
        torch.randperm(len(plain_images), generator=torch.Generator().manual_seed(config.seed))
    ]
    scorer = QualityScorer(real_ref[: config.quality_samples])

    # 2. Resume: both networks, both optimizers, the step and the scores so far.
    quality_start, elapsed_before = None, 0.0
    ckpt = load_latest(run_dir, device=str(device)) if job.resume else None
    if ckpt is not None:
        generator.load_state_dict(strip(ckpt.tensors, "generator."))
        discriminator.load_state_dict(strip(ckpt.tensors, "discriminator."))
        opt_g.load_state_dict(ckpt.extra_state["opt_g"])
        opt_d.load_state_dict(ckpt.extra_state["opt_d"])
        if ema is not None and "n_averaged" in ckpt.extra_state:
            shown.load_state_dict(strip(ckpt.tensors, "generator_ema."))
            ema.n_averaged.fill_(ckpt.extra_state["n_averaged"])
        quality_start = ckpt.meta.get("quality_start")
        elapsed_before = float(ckpt.meta.get("train_time_s") or 0.0)
        print(f"gan: resumed from step {ckpt.step} ({ckpt.path.name})", flush=True)

    @torch.no_grad()
    def generate_eval(z: Any, y: Any) -> Any:
        shown.eval()  # what users get: batch norm on its running statistics, z × the default ψ
        try:
            parts = [shown(z[i : i + 128], None if y is None else y[i : i + 128]) for i in range(0, len(z), 128)]
            return torch.cat(parts).cpu()
        finally:
            generator.train()

    def evaluate() -> dict[str, Any]:
        report = scorer.score(generate_eval(eval_z, eval_y))
        return {
            "quality": report.quality,
            "diversity": report.diversity,
            "mode_collapse_warning": report.mode_collapse_warning,
            "message": report.message,
            "clean_share": report.clean_share,
        }

    def write_grid(step: int) -> str:
        run_dir.samples_dir.mkdir(parents=True, exist_ok=True)
        rel = f"samples/step-{step}.png"
        scale = 2 if config.resolution == 32 else 1
        image_grid(generate_eval(grid_z, grid_y), nrow=8, scale=scale).save(run_dir.path / rel)
        return rel

    latest: dict[str, Any] = {}
    seg_t0 = time.perf_counter()

    def checkpoint(step: int) -> None:
        if not main:
            return
        tensors = {
            **prefix(generator.state_dict(), "generator."),
            **prefix(discriminator.state_dict(), "discriminator."),
            **(prefix(shown.state_dict(), "generator_ema.") if ema is not None else {}),
        }
        state = {"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step}
        if ema is not None:
            state["n_averaged"] = int(ema.n_averaged)
        meta = {
            "kind": "gan",
            "model": model_cfg.to_dict(),
            "config": asdict(config),
            "quality_start": quality_start,
            "quality": latest.get("quality"),
            "train_time_s": round(elapsed_before + time.perf_counter() - seg_t0, 3),
        }
        path = save_checkpoint(run_dir, step, tensors, state, meta=meta, keep_last=config.keep_checkpoints)
        print(f"gan: saved {path.name}", flush=True)

    # 3. Before training: the step-0 score and sample grid (shown with the first event).
    first_extra: dict[str, Any] = {}
    if quality_start is None:
        start_report = evaluate()
        quality_start = start_report["quality"]
        latest.update(quality=quality_start, diversity=start_report["diversity"])  # no collapse warning yet
        first_extra = {
            "quality": quality_start,
            "quality_start": quality_start,
            "diversity": start_report["diversity"],
        }
        if start_report["clean_share"] is not None:
            first_extra["clean_share"] = start_report["clean_share"]
        if main:
            first_extra["samples"] = [write_grid(0)]
        print(
            f"gan: quality at step 0 = {quality_start:.4g} (KID in a random-feature space, lower is better)",
            flush=True,
        )

    # 4. Train: D on real + fake, then G (non-saturating loss), one event every log_every steps.
    loop = TrainingLoop(run_dir, name="gan", start_step=ckpt.step if ckpt else 0, total_steps=total_steps,
                        save_every=config.save_every, checkpoint=checkpoint, resume=job.resume, main=main)  # fmt: skip
    start_step = step = loop.start_step
    sums = {"loss_g": 0.0, "loss_d": 0.0, "d_x": 0.0, "d_g_z": 0.0}
    counted, window_t0, images_seen = 0, time.perf_counter(), 0
    train_t0 = window_t0
    with loop:
        for step in loop.steps():
            lr = learning_rate_at(config, step, total_steps)
            for group in (*opt_g.param_groups, *opt_d.param_groups):
                group["lr"] = lr
            idx, flips, z = step_batch(config.seed, step, num_images, config.batch_size, config.nz)
            real = train_images[idx.to(device)].float() / 127.5 - 1.0  # (B, 3, R, R), as to_tensor_normalised
            if "flip" in config.augment:
                real = torch.where(flips.to(device)[:, None, None, None], real.flip(-1), real)
            real = real.contiguous(memory_format=layout)
            z = z.to(device)
            y_real = y_fake = None
            if train_labels is not None:
                y_real = train_labels[idx].to(device)
                y_fake = step_labels(config.seed, step, train_labels, config.batch_size).to(device)

            judge = discriminator  # D, seeing every image shifted (a function of seed and step)
            if config.translate:
                shifts = torch.Generator().manual_seed(config.seed * 1_000_003 + step + 900_000_011)
                judge = lambda x, y, g=shifts: discriminator(translate(x, config.translate, g), y)  # noqa: E731

            fake = generator(z, y_fake, truncation=1.0)  # (B, 3, R, R): training samples plain N(0, 1)
            loss_d, logits_real, logits_fake = discriminator_loss(judge, real, fake, config.r1_gamma, y_real, y_fake)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            logits_gen = judge(fake, y_fake)  # non-saturating loss: G wants D to call its images real
            loss_g = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if ema is not None:
                ema.update_parameters(generator)

            sums["loss_g"] += loss_g.item()
            sums["loss_d"] += loss_d.item()
            sums["d_x"] += torch.sigmoid(logits_real).mean().item()
            sums["d_g_z"] += torch.sigmoid(logits_fake).mean().item()
            counted += 1
            images_seen += config.batch_size

            saving = loop.save_point(step)
            scoring = saving or (config.eval_every and step % config.eval_every == 0)
            logging_now = step % config.log_every == 0 or step == start_step + 1 or scoring
            fields: dict[str, Any] = {}
            if logging_now:
                means = {k: round(v / counted, 5) for k, v in sums.items()}
                now = time.perf_counter()
                fields = {
                    "loss": means["loss_g"],
                    **means,
                    "lr": lr,
                    "throughput": round(counted * config.batch_size / max(now - window_t0, 1e-9), 1),
                    "total_steps": total_steps,
                }
                sums = dict.fromkeys(sums, 0.0)
                counted, window_t0 = 0, now
                latest.update(means)
            if scoring:
                report = evaluate()
                latest.update(report)
                fields.update(
                    quality=report["quality"],
                    quality_start=quality_start,
                    diversity=report["diversity"],
                    mode_collapse_warning=report["mode_collapse_warning"],
                )
                if report["clean_share"] is not None:
                    fields["clean_share"] = report["clean_share"]
                if report["message"]:
                    fields["message"] = report["message"]
            if saving:
                loop.save(step)
                if main:
                    fields["samples"] = [write_grid(step)]
            if fields:
                if first_extra:
                    fields = {
                        **first_extra,
                        **fields,
                        "samples": first_extra.get("samples", []) + fields.get("samples", []),
                    }
                    first_extra = {}
                loop.log(step, **fields)
            if step == start_step + ESTIMATE_AFTER and step < total_steps:
                pace = (time.perf_counter() - train_t0) / ESTIMATE_AFTER
                left = (total_steps - step) * pace
                print(f"gan: {pace:.3f} s/step here: about {left / 60:.0f} min left for {total_steps - step} steps "
                      "(plus the evaluations)", flush=True)  # fmt: skip
            if loop.stop_requested(step):
                return {"status": "cancelled", "metrics": _metrics(latest, quality_start)}

    # 5. The artifact: the generator (eval-ready, batch-norm statistics included) + its config.
    train_time = elapsed_before + time.perf_counter() - seg_t0
    seg_time = time.perf_counter() - seg_t0
    metrics = _metrics(latest, quality_start)
    metrics["train_time_s"] = round(train_time, 2)
    if images_seen:
        metrics["images_per_s"] = round(images_seen / max(seg_time, 1e-9), 1)
    name = config.name or f"DCGAN {config.resolution} px · {dataset_name}"
    out_dir = artifact_dir(job, run_dir)
    if main:
        info = {"name": name, "dataset": dataset_name, "dataset_id": job.dataset_id, "job_id": job.job_id,
                "steps": step, "metrics": metrics, "training": asdict(config)}  # fmt: skip
        with atomic_folder(out_dir) as tmp:
            write_artifact(tmp, shown, model_cfg, info)
    print(
        f"gan: done in {train_time:.1f} s; quality {quality_start:.4g} → {metrics.get('quality')}", flush=True
    )
    artifact = {"type": "gan", "path": str(out_dir), "base_model": f"dcgan-{config.resolution}", "name": name}
    return {"metrics": metrics, "artifact": artifact}


def _metrics(latest: dict[str, Any], quality_start: float | None) -> dict[str, Any]:
    keys = ("loss_g", "loss_d", "d_x", "d_g_z", "quality", "diversity", "clean_share")
    out = {k: latest[k] for k in keys if latest.get(k) is not None}
    if "loss_g" in out:
        out["loss"] = out["loss_g"]
    out["quality_start"] = quality_start
    out["mode_collapse_warning"] = bool(latest.get("mode_collapse_warning", False))
    if latest.get("message"):
        out["mode_collapse_message"] = latest["message"]
    return out


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
