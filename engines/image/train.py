"""Kind `image-lora`: teach a Stable Diffusion model a subject or style from captioned images.

    accelerate launch -m engines.image.train --run-dir runs/<job-id>

A LoRA (peft, gaussian init) on the UNet's attention projections (`to_q`, `to_k`, `to_v`,
`to_out.0`) learns to predict the noise the DDPM forward process added to an image's latents,
given its caption (or `instance_prompt` where an image has none); the VAE and the text encoder stay
frozen. The data set is small, so latents and caption embeddings are computed once up front
(with `augment`, `augment_copies` augmented versions of each image).

Every `save_every` steps: a checkpoint, a fixed validation loss (the same latents, noise and
timesteps each time, so it moves only when the model does) and progress samples from fixed
prompts and seeds, drawn by a pipeline built around the UNet being trained.

Artifact: a diffusers LoRA folder (`pytorch_lora_weights.safetensors`, loadable with
`StableDiffusionPipeline.load_lora_weights`) + README.md, type `image_lora`.

Resume is exact: everything random in a step (batch, noise, timesteps, latent sample) comes from
a generator seeded by (seed, step); checkpoints hold the LoRA weights, optimizer, scheduler, RNG.
Reading, encoding and batching the data, and the loss, live in `train_data.py`; the pipeline,
the LoRA, the samples and the artifact in `train_model.py`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engines.image.train_data import (
    batch_indices,
    default_sample_prompts,
    diffusion_loss,
    encode_training_set,
    read_captioned_images,
    step_generator,
    training_batch,
    validation_batches,
    validation_loss,
)
from engines.image.train_model import (
    add_lora,
    load_pipeline,
    model_card,
    resolve_base,
    sampling_pipeline,
    save_lora,
    write_samples,
)
from engines.training import (
    RunDir,
    TrainingLoop,
    accumulated_step,
    adamw_with_schedule,
    artifact_dir,
    dataset_name,
    is_main_process,
    keeps_torch_threads,
    one_thread_if_tiny,
    read_events,
    restore_rng,
    resume_training,
    save_training_state,
    this_process_share,
    trainer_main,
)

if TYPE_CHECKING:
    from engines.registry import ModelSpec

LOSS_WINDOW = 10  # loss_start / loss: mean over this many first / last steps (at most a quarter)


@dataclass
class ImageLoraConfig:
    """Teach a Stable Diffusion model a subject or style from captioned images: a LoRA on its UNet."""

    max_steps: int = 500  # optimizer steps in total
    learning_rate: float | None = None  # None: 1e-4 (5e-3 on starter/ models, whose weights are random)
    batch_size: int = 4  # images per micro-batch
    gradient_accumulation_steps: int = 1  # micro-batches per optimizer step
    resolution: int | None = None  # square size in pixels, multiple of 8 (None: the model's, 512 on SD 1.x)
    augment: list[str] = field(default_factory=list)  # any of flip, rotate, crop, color
    augment_copies: int = 4  # with augment: augmented versions of each image encoded up front
    lora_rank: int = 8  # rank r of the update matrices
    lora_alpha: float = 8.0  # the update is scaled by lora_alpha / lora_rank
    lora_dropout: float = 0.0  # dropout on the adapter's input
    lr_scheduler: Literal["constant", "linear", "cosine"] = "constant"  # decay after the warm-up
    warmup_steps: int = 0  # steps of linear learning-rate warm-up
    max_grad_norm: float = 1.0  # gradient-norm clipping (0: off)
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, slower
    seed: int = 0  # seeds the LoRA's initial weights, the batches, the noise and the samples
    save_every: int = 100  # steps between checkpoints, validation losses and samples (0: at the end only)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    instance_prompt: str = ""  # the caption of every image that has none (e.g. "a photo of sks dog")
    sample_prompts: list[str] | None = None  # prompts of the progress samples (None: the first captions)
    sample_steps: int | None = None  # denoising steps per sample (None: 4 on turbo models, else 20)
    sample_guidance_scale: float | None = None  # guidance of the samples (None: 0 on turbo models, else 7)
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"  # auto: bf16/fp16 on GPUs, no on CPU

    def __post_init__(self) -> None:
        for name in (
            "max_steps",
            "batch_size",
            "gradient_accumulation_steps",
            "lora_rank",
            "keep_checkpoints",
            "augment_copies",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"'{name}' must be at least 1.")
        for name in ("warmup_steps", "save_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"'{name}' must not be negative.")
        if self.resolution is not None and (self.resolution < 8 or self.resolution % 8):
            raise ValueError(f"'resolution' must be a positive multiple of 8, not {self.resolution}.")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError("'learning_rate' must be positive.")
        if self.lora_alpha <= 0 or self.max_grad_norm < 0:
            raise ValueError("'lora_alpha' must be positive and 'max_grad_norm' not negative.")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError("'lora_dropout' must be at least 0 and below 1.")
        if self.sample_steps is not None and not 1 <= self.sample_steps <= 150:
            raise ValueError("'sample_steps' must be between 1 and 150.")
        if self.sample_guidance_scale is not None and not 0 <= self.sample_guidance_scale <= 30:
            raise ValueError("'sample_guidance_scale' must be between 0 and 30.")
        from engines.augment import validate_augment

        self.augment = validate_augment(self.augment)


CONFIG_CLASS = ImageLoraConfig


def default_learning_rate(base: ModelSpec) -> float:
    """5e-3 on a random-weight starter, 1e-3 on a (small) trained starter, 1e-4 on a real model."""
    if base.is_random_starter:
        return 5e-3
    return 1e-3 if base.is_starter else 1e-4


def sample_settings(config: ImageLoraConfig, base: ModelSpec) -> tuple[int, float]:
    """(steps, guidance scale) of the progress samples; distilled models want few steps, no guidance."""
    steps = config.sample_steps or (4 if base.is_distilled else 20)
    guidance = config.sample_guidance_scale
    return steps, (0.0 if base.is_distilled else 7.0) if guidance is None else guidance


def resolve_mixed_precision(requested: str, device: Any) -> str:
    """'no' unless the device is a CUDA GPU that supports the requested half type."""
    import torch

    if device.type != "cuda":
        return "no"
    if requested == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if requested == "bf16" and not torch.cuda.is_bf16_supported():
        return "fp16"
    return requested



# -- the run -------------------------------------------------------------------------------------
@keeps_torch_threads
def run(config: ImageLoraConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from accelerate import Accelerator, PartialState
    from accelerate.utils import set_seed
    from diffusers import DDPMScheduler

    # 1. The job: base model, device, precision.
    job = run_dir.read_job()
    if not job.dataset_path:
        raise ValueError("image-lora needs an image dataset: pass dataset_id.")
    base, location = resolve_base(job, job.models_dir())
    lr = config.learning_rate or default_learning_rate(base)
    probe = PartialState(cpu=job.device == "cpu").device  # the device, before precision is chosen
    mixed = resolve_mixed_precision(config.mixed_precision, probe)
    if mixed != config.mixed_precision and config.mixed_precision != "auto":
        print(
            f"image-lora: mixed_precision '{config.mixed_precision}' is not supported on "
            f"{probe.type}; using '{mixed}'",
            flush=True,
        )
    accelerator = Accelerator(cpu=job.device == "cpu", mixed_precision=mixed)
    main = accelerator.is_main_process and is_main_process()
    device = accelerator.device
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed, torch.float32)
    set_seed(config.seed)

    # 2. The frozen base, and a fresh LoRA on the UNet's attention.
    pipe = load_pipeline(location, weight_dtype)
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
        module.to(device)
    vae.eval()
    text_encoder.eval()
    n_total = sum(p.numel() for p in unet.parameters())
    one_thread_if_tiny(n_total, on_cpu=device.type == "cpu")
    trainable = add_lora(unet, config.lora_rank, config.lora_alpha, config.lora_dropout)
    n_trainable = sum(p.numel() for p in trainable)
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    num_timesteps = noise_scheduler.config.num_train_timesteps
    vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)
    resolution = config.resolution or int(unet.config.sample_size) * vae_factor

    # 3. Data: every image and caption encoded once.
    t_encode = time.perf_counter()
    pairs = read_captioned_images(Path(job.dataset_path), config.instance_prompt)
    data = encode_training_set(pairs, resolution, vae, text_encoder, tokenizer, device, augment=config.augment,
                               copies=config.augment_copies, seed=config.seed)  # fmt: skip
    eval_batches = validation_batches(data, num_timesteps, config.seed, config.batch_size)
    prompts = list(config.sample_prompts or default_sample_prompts([c for _, c in pairs]))
    sample_steps, sample_guidance = sample_settings(config, base)
    encode_s = time.perf_counter() - t_encode

    # 4. Optimizer and schedule; on resume their states, the LoRA weights and the RNG.
    optimizer, scheduler = adamw_with_schedule(
        trainable, lr=lr, weight_decay=0.01, schedule=config.lr_scheduler,  # 0.01: torch's AdamW default
        warmup_steps=config.warmup_steps, total_steps=config.max_steps,
    )  # fmt: skip
    eval_before = None
    ckpt = resume_training(run_dir, unet, optimizer, scheduler) if job.resume else None
    if ckpt is not None:
        eval_before = ckpt.meta.get("eval_loss_before")
        print(f"image-lora: resumed from step {ckpt.step} ({ckpt.path.name})", flush=True)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    raw_unet = accelerator.unwrap_model(unet)
    evaluate = partial(
        validation_loss, raw_unet, noise_scheduler, eval_batches, device, weight_dtype, accelerator.autocast
    )
    if eval_before is None:
        eval_before = evaluate()
    if ckpt is not None:
        restore_rng(ckpt.extra_state)
    samples = partial(
        write_samples, sampling_pipeline(pipe, raw_unet), prompts, run_dir, seed=config.seed, steps=sample_steps,
        guidance=sample_guidance, resolution=resolution, autocast=accelerator.autocast,
    )  # fmt: skip

    def checkpoint(step: int) -> None:
        if main:
            meta = {"kind": "image-lora", "base_model": base.id, "config": asdict(config),
                    "eval_loss_before": eval_before}  # fmt: skip
            save_training_state(run_dir, step, raw_unet, optimizer, scheduler, meta=meta,
                                keep_last=config.keep_checkpoints)  # fmt: skip

    loop = TrainingLoop(run_dir, name="image-lora", start_step=ckpt.step if ckpt else 0, total_steps=config.max_steps,
                        save_every=config.save_every, checkpoint=checkpoint, resume=job.resume, main=main)  # fmt: skip
    print(
        f"image-lora: LoRA r={config.lora_rank} on {base.id} ({n_trainable:,} of {n_total:,} UNet weights "
        f"trainable), {len(pairs)} images × {len(data) // len(pairs)} at {resolution}px encoded in {encode_s:.1f}s, "
        f"steps {loop.start_step + 1}..{config.max_steps} on {device} ({mixed}), validation loss {eval_before:.4f}",
        flush=True,
    )

    # 5. Train: one event per step; checkpoint, validation loss and samples every save_every steps.
    accum = config.gradient_accumulation_steps

    def micro_batches(step: int) -> Any:
        for j in range(accum):
            micro = (step - 1) * accum + j
            idx = this_process_share(batch_indices(len(data), config.batch_size, config.seed, micro), accelerator)
            yield training_batch(data, idx, step_generator(config.seed, micro), num_timesteps)

    unet.train()
    loss_value = eval_loss = float("nan")
    t_start = time.perf_counter()
    step_time = 0.0  # in optimizer steps only, without checkpoints, validation and samples
    with loop:
        for step in loop.steps():
            t0 = time.perf_counter()
            loss_value = accumulated_step(
                accelerator, micro_batches(step),
                lambda batch: diffusion_loss(unet, noise_scheduler, batch, device, weight_dtype), accum=accum,
                params=trainable, max_grad_norm=config.max_grad_norm, optimizer=optimizer, scheduler=scheduler,
            )  # fmt: skip
            elapsed = max(time.perf_counter() - t0, 1e-9)
            step_time += elapsed
            fields: dict[str, Any] = {
                "loss": round(loss_value, 6),
                "lr": scheduler.get_last_lr()[0],
                "images_per_s": round(config.batch_size * accum / elapsed, 2),
                "epoch": round(step * accum * config.batch_size / len(pairs), 3),  # passes over the images
            }
            if loop.save_point(step):
                loop.save(step)
                if main:
                    eval_loss = evaluate()
                    fields["eval_loss"] = round(eval_loss, 6)
                    fields["samples"] = samples(step)
            loop.log(step, **fields, total_steps=config.max_steps)
            if loop.stop_requested(step):
                return {"status": "cancelled", "metrics": {"loss": loss_value}}
    train_time = time.perf_counter() - t_start

    # 6. Report (losses from the whole event log, so a resumed run counts its first part) and save.
    eval_after = evaluate() if math.isnan(eval_loss) else eval_loss  # the last step was a save point
    losses = [e["loss"] for e in read_events(run_dir.events_path) if isinstance(e.get("loss"), int | float)]
    window = max(1, min(LOSS_WINDOW, len(losses) // 4))
    steps_run = config.max_steps - loop.start_step
    metrics = {
        "loss_start": sum(losses[:window]) / window if losses else loss_value,
        "loss": sum(losses[-window:]) / window if losses else loss_value,
        "eval_loss_before": eval_before,
        "eval_loss": eval_after,
        "steps": config.max_steps,
        "train_time_s": round(train_time, 3),
        "s_per_step": round(step_time / max(steps_run, 1), 4),
        "images": len(pairs),
        "resolution": resolution,
        "trainable_params": n_trainable,
        "learning_rate": lr,
        "mixed_precision": mixed,
    }
    print(
        f"image-lora: done in {train_time:.1f}s, loss {metrics['loss_start']:.4f} → {metrics['loss']:.4f}, "
        f"validation loss {eval_before:.4f} → {eval_after:.4f}",
        flush=True,
    )
    if not main:
        return {"metrics": metrics, "artifact": None}
    out_dir = artifact_dir(job, run_dir)
    name = dataset_name(Path(job.dataset_path))
    save_lora(raw_unet, out_dir, model_card(base, name, job.dataset_id, config, metrics, prompts))
    return {
        "metrics": metrics,
        "artifact": {
            "type": "image_lora",
            "path": str(out_dir),
            "base_model": base.id,
            "name": f"{name} · LoRA on {base.id}"[:200],
        },
    }


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
