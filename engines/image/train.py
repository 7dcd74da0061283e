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
Reading, encoding and batching the data, and the loss, live in `engines.image.train_data`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
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
from engines.registry import TINY_MODEL_PARAMS
from engines.training import (
    EventLog,
    RunDir,
    current_rng_state,
    is_main_process,
    read_events,
    restore_rng,
    resume_training,
    save_checkpoint,
    trainer_main,
)

if TYPE_CHECKING:
    from engines.registry import ModelSpec

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
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
    return 5e-3 if base.is_starter else 1e-4


def sample_settings(config: ImageLoraConfig, base: ModelSpec) -> tuple[int, float]:
    """(steps, guidance scale) of the progress samples; distilled models want few steps, no guidance."""
    steps = config.sample_steps or (4 if base.is_distilled else 20)
    guidance = config.sample_guidance_scale
    return steps, (0.0 if base.is_distilled else 7.0) if guidance is None else guidance


# -- the model -----------------------------------------------------------------------------------
def resolve_base(job: Any, models_root: Path) -> tuple[ModelSpec, str]:
    """(the job's base model, the folder / file / hub id to load it from)."""
    from engines.registry import ModelRegistry

    registry = ModelRegistry(models_root, offline=job.offline)
    try:
        spec = registry.resolve(job.base_model, "image")
    except KeyError as exc:  # UnknownModel: its message lists the image models there are
        raise ValueError(str(exc)) from exc
    return spec, registry.location(spec)


def load_pipeline(location: str, dtype: Any) -> Any:
    """The base StableDiffusionPipeline without a safety checker (samples are for the trainer's owner)."""
    from diffusers import StableDiffusionPipeline

    kwargs = dict(dtype=dtype, safety_checker=None, requires_safety_checker=False)
    if location.lower().endswith(".safetensors"):
        pipe = StableDiffusionPipeline.from_single_file(location, **kwargs)
    else:
        pipe = StableDiffusionPipeline.from_pretrained(location, use_safetensors=True, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


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


def write_samples(
    pipe: Any,
    prompts: list[str],
    run_dir: RunDir,
    step: int,
    *,
    seed: int,
    steps: int,
    guidance: float,
    resolution: int,
    autocast: Any,
) -> list[str]:
    """One PNG per prompt (seed + i), drawn with the UNet as trained so far; paths relative to the run dir."""
    import torch

    unet = pipe.unet
    was_training = unet.training
    unet.eval()
    run_dir.samples_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with torch.no_grad(), autocast():
        for i, prompt in enumerate(prompts):
            generator = torch.Generator("cpu").manual_seed(seed + i)  # CPU noise: same image on any device
            image = pipe(
                prompt,
                num_inference_steps=steps,
                guidance_scale=guidance,
                width=resolution,
                height=resolution,
                generator=generator,
            ).images[0]
            rel = f"samples/step-{step}-{i}.png"
            image.save(run_dir.path / rel)
            paths.append(rel)
    unet.train(was_training)
    return paths


# -- the run -------------------------------------------------------------------------------------
def run(config: ImageLoraConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from accelerate import Accelerator, PartialState
    from accelerate.utils import set_seed
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig
    from transformers import get_scheduler

    # 1. The job: base model, device, precision.
    job = run_dir.read_job()
    if not job.dataset_path:
        raise ValueError("image-lora needs an image dataset: pass dataset_id.")
    models_root = job.models_dir()
    base, location = resolve_base(job, models_root)
    base_id = base.id
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

    # 2. The frozen base, and a fresh LoRA on the UNet's attention (float32 even under mixed precision).
    pipe = load_pipeline(location, weight_dtype)
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
        module.to(device)
    vae.eval()
    text_encoder.eval()
    n_total = sum(p.numel() for p in unet.parameters())
    if device.type == "cpu" and n_total < TINY_MODEL_PARAMS:
        torch.set_num_threads(1)  # tiny convolutions: syncing threads costs more than it saves
    unet.add_adapter(
        LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            init_lora_weights="gaussian",
            target_modules=list(LORA_TARGETS),
        )
    )
    cast_training_params(unet, dtype=torch.float32)
    trainable = [p for p in unet.parameters() if p.requires_grad]
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
    data = encode_training_set(pairs, config, resolution, vae, text_encoder, tokenizer, device)
    eval_batches = validation_batches(data, num_timesteps, config.seed, config.batch_size)
    prompts = list(config.sample_prompts or default_sample_prompts([c for _, c in pairs]))
    sample_steps, sample_guidance = sample_settings(config, base)
    encode_s = time.perf_counter() - t_encode

    # 4. Optimizer and schedule; on resume their states, the LoRA weights and the RNG.
    optimizer = torch.optim.AdamW(trainable, lr=lr)
    scheduler = get_scheduler(
        config.lr_scheduler if config.lr_scheduler != "constant" else "constant_with_warmup",
        optimizer,
        num_warmup_steps=config.warmup_steps,
        num_training_steps=config.max_steps,
    )
    start_step, eval_before = 0, None
    ckpt = resume_training(run_dir, unet, optimizer, scheduler) if job.resume else None
    rng_state = None
    if ckpt is not None:
        rng_state = ckpt.extra_state
        start_step = ckpt.step
        eval_before = ckpt.meta.get("eval_loss_before")
        print(f"image-lora: resumed from step {start_step} ({ckpt.path.name})", flush=True)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    raw_unet = accelerator.unwrap_model(unet)
    evaluate = partial(
        validation_loss, raw_unet, noise_scheduler, eval_batches, device, weight_dtype, accelerator.autocast
    )
    if eval_before is None:
        eval_before = evaluate()
    if rng_state is not None:
        restore_rng(rng_state)
    sampler = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=raw_unet,
        scheduler=pipe.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    sampler.set_progress_bar_config(disable=True)
    print(
        f"image-lora: LoRA r={config.lora_rank} on {base_id} ({n_trainable:,} of {n_total:,} UNet weights "
        f"trainable), {len(pairs)} images × {len(data) // len(pairs)} at {resolution}px encoded in {encode_s:.1f}s, "
        f"steps {start_step + 1}..{config.max_steps} on {device} ({mixed}), validation loss {eval_before:.4f}",
        flush=True,
    )

    def checkpoint(step: int) -> None:
        if not main:
            return
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                 **current_rng_state()}
        weights = {n: p for n, p in raw_unet.named_parameters() if p.requires_grad}
        meta = {
            "kind": "image-lora",
            "base_model": base_id,
            "config": asdict(config),
            "eval_loss_before": eval_before,
        }
        save_checkpoint(run_dir, step, weights, state, meta=meta, keep_last=config.keep_checkpoints)

    samples = partial(
        write_samples, sampler, prompts, run_dir, seed=config.seed, steps=sample_steps,
        guidance=sample_guidance, resolution=resolution, autocast=accelerator.autocast,
    )  # fmt: skip

    # 5. Train: one event per step; checkpoint, validation loss and samples every save_every steps.
    events = EventLog(run_dir, resume_step=start_step if job.resume else None, tensorboard=main)
    unet.train()
    accum = config.gradient_accumulation_steps
    loss_value = eval_loss = float("nan")
    saved_at = start_step
    t_start = time.perf_counter()
    step_time = 0.0  # in optimizer steps only, without checkpoints, validation and samples
    try:
        for step in range(start_step + 1, config.max_steps + 1):
            t0 = time.perf_counter()
            step_loss = 0.0
            for j in range(accum):
                micro = (step - 1) * accum + j
                idx = batch_indices(len(data), config.batch_size, config.seed, micro)
                idx = idx[accelerator.process_index :: accelerator.num_processes] or idx[:1]
                batch = training_batch(data, idx, step_generator(config.seed, micro), num_timesteps)
                with accelerator.autocast():
                    loss = diffusion_loss(unet, noise_scheduler, batch, device, weight_dtype) / accum
                accelerator.backward(loss)
                step_loss += loss.item()
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = step_loss
            elapsed = max(time.perf_counter() - t0, 1e-9)
            step_time += elapsed
            fields: dict[str, Any] = {
                "loss": round(loss_value, 6),
                "lr": scheduler.get_last_lr()[0],
                "images_per_s": round(config.batch_size * accum / elapsed, 2),
                "epoch": round(step * accum * config.batch_size / len(pairs), 3),  # passes over the images
            }
            if (config.save_every and step % config.save_every == 0) or step == config.max_steps:
                checkpoint(step)
                saved_at = step
                if main:
                    eval_loss = evaluate()
                    fields["eval_loss"] = round(eval_loss, 6)
                    fields["samples"] = samples(step)
            if main:
                events.append(step, **fields, total_steps=config.max_steps)
            if run_dir.stop.requested:
                if saved_at != step:
                    checkpoint(step)
                print(f"image-lora: stopped at step {step} on request", flush=True)
                return {"status": "cancelled", "metrics": {"loss": loss_value}}
    finally:
        events.close()
    train_time = time.perf_counter() - t_start

    # 6. Report (losses from the whole event log, so a resumed run counts its first part) and save.
    eval_after = evaluate() if math.isnan(eval_loss) else eval_loss  # the last step was a save point
    losses = [e["loss"] for e in read_events(run_dir.events_path) if isinstance(e.get("loss"), int | float)]
    window = max(1, min(LOSS_WINDOW, len(losses) // 4))
    steps_run = config.max_steps - start_step
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
    out_dir = Path(job.output_dir) if job.output_dir else models_root / "trained" / job.job_id
    dataset_name = _dataset_name(Path(job.dataset_path))
    card = model_card(base, dataset_name, job.dataset_id, config, metrics, prompts)
    save_lora(raw_unet, out_dir, card)
    return {
        "metrics": metrics,
        "artifact": {
            "type": "image_lora",
            "path": str(out_dir),
            "base_model": base_id,
            "name": f"{dataset_name} · LoRA on {base_id}"[:200],
        },
    }


# -- the artifact --------------------------------------------------------------------------------
def save_lora(unet: Any, out_dir: Path, card: str) -> None:
    """Write the diffusers-format LoRA (+ its peft config as metadata, so lora_alpha survives) atomically."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    StableDiffusionPipeline.save_lora_weights(
        tmp,
        unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
        unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),
        safe_serialization=True,
    )
    (tmp / "README.md").write_text(card, encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)


def _dataset_name(dataset_path: Path) -> str:
    try:
        return str(json.loads((dataset_path / "manifest.json").read_text(encoding="utf-8"))["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return dataset_path.name


def model_card(
    base: ModelSpec,
    dataset_name: str,
    dataset_id: str | None,
    config: ImageLoraConfig,
    metrics: dict[str, Any],
    prompts: list[str],
) -> str:
    resolved = {k: metrics[k] for k in ("learning_rate", "resolution", "mixed_precision")}
    params = {k: v for k, v in {**asdict(config), **resolved}.items() if v not in (None, "", [])}
    base_id = base.id
    where = f"studio-data/models/{base_id}" if base.is_starter else base_id  # starters live in the data dir
    shown = ("loss_start", "loss", "eval_loss_before", "eval_loss", "steps", "train_time_s", "s_per_step")
    return "\n".join(
        [
            "---",
            f"base_model: {base_id}",
            "library_name: diffusers",
            "tags: [aigc-studio, text-to-image, stable-diffusion, lora]",
            "---",
            "",
            f"# {dataset_name} — image LoRA",
            "",
            f"A LoRA on the UNet attention of `{base_id}`, trained with AIGC Studio (job kind `image-lora`).",
            "",
            f"- **Base model:** `{base_id}`",
            f"- **Dataset:** {dataset_name}"
            + (f" (`{dataset_id}`)" if dataset_id else "")
            + f", {metrics['images']} images at {metrics['resolution']} px",
            f"- **Sample prompts:** {'; '.join(prompts)}",
            "",
            "## Use",
            "",
            "```python",
            "from diffusers import StableDiffusionPipeline",
            "",
            f'pipe = StableDiffusionPipeline.from_pretrained("{where}")',
            'pipe.load_lora_weights("path/to/this/folder")',
            "```",
            "",
            "## Parameters",
            "",
            *[f"- `{k}`: {v}" for k, v in params.items()],
            "",
            "## Metrics",
            "",
            "`loss_start` / `loss`: mean noise-prediction loss of the first / last steps; `eval_loss_before` /",
            "`eval_loss`: the same loss on fixed noise and timesteps over the training images, before / after.",
            "",
            *[f"- `{k}`: {metrics[k]:.4g}" for k in shown if isinstance(metrics.get(k), int | float)],
            "",
        ]
    )


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
