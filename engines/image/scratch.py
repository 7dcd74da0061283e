"""Kind `image-scratch`: train a small Stable Diffusion from scratch on a captioned image dataset.

    accelerate launch -m engines.image.scratch --run-dir runs/<job-id>

The same components as a real SD 1.x — `AutoencoderKL`, `UNet2DConditionModel`, `CLIPTextModel`,
`CLIPTokenizer`, DDPM for training and DDIM for drawing — at sizes a CPU can train
(scratch_model.py's presets), in two phases of one job:

  1. the VAE (`vae_steps`): reconstruction MSE + a small KL term, Adam with a short warm-up and a
     cosine decay (the last steps at a small learning rate take the reconstructions from grainy to
     flat). With `vae_crop` it trains on random crops, then on whole images for the last
     `vae_whole_share` of its steps: the VAE is convolutional, so crops teach it the same local work
     at a fraction of the cost (32-px crops of 64-px images: 0.2 s a step instead of 1 s), but its
     GroupNorm layers see other statistics on a crop than on a whole image, and a VAE trained on
     crops alone reconstructs whole images badly (measured: MSE 0.022 on whole images after 3000
     crop steps; 100 whole-image steps brought it to 0.003). Measured on the shapes world, 64 px,
     2 threads, reconstruction MSE on images of held-out combinations: 1200 whole-image steps at a
     constant 1e-3 (20 min) 0.012; 2400 steps at 2e-3, the first 1800 on crops (19 min) 0.0026.
     Skipped when `base_model` names an image model whose VAE is reused; with `base_reuse` "all" its
     UNet, text encoder and tokenizer are reused too (and its latent scaling factor kept), so the run
     trains that model further (the image starter's second stage) instead of a new UNet.
  2. the UNet together with a text encoder trained from scratch (`unet_steps`), on the latents of
     the training images encoded once by the VAE. The latent scaling factor (SD's 0.18215) is
     measured from those latents — 1 / their std — and stored in the VAE config. `cfg_dropout` of
     the captions are replaced by "" so that classifier-free guidance works when drawing. With
     `prediction_type` "v_prediction" the UNet predicts v = √ᾱ·ε − √(1−ᾱ)·x₀ instead of the noise
     ε; `zero_terminal_snr` rescales SD's betas so that the last timestep is pure noise, and the
     saved DDIM draws from there ("trailing" timesteps; scratch_model._schedule says why).

The tokenizer is a CLIP-style BPE trained on the dataset's captions (engines.starter.train_clip_bpe).

The VAE's reconstruction loss is L1 by default, as Stable Diffusion's autoencoder was trained: an
error's cost grows linearly, so the faint grain MSE leaves on flat areas is not worth keeping.
Measured on held-out shapes-world images (64 px, "tiny" VAE, after 2400 steps on crops and whole
images with MSE): 600 more whole-image steps with L1 reached a median border RMS of 8.1 and 78 %
of reconstructions read fully right by the shapes detector; 300 with MSE, 10.2 and 43 %. From scratch
with L1, 3200 steps at 2e-3 (warm-up, cosine), the first half on 32-px crops (0.35 s a step on one
thread) and the second half on whole images (`vae_whole_share` 0.5; 1.5 s a step): median border
RMS 6.6 and 98 % of 54 held-out reconstructions read fully right (the image starter's VAE; 49 min).

Events: one per step, `phase` "vae" (loss = reconstruction loss + KL term, `rec_loss`, `kl`) or
"unet" (loss = MSE of the predicted noise, or of v). Every `save_every` steps, at the end of the VAE phase and at
the end: a checkpoint and a sample grid in `samples/` (VAE phase: originals above their
reconstructions; UNet phase: one row per sample prompt, `sample_seeds` images each, same noise
every time). Resume is exact: every random choice of a step depends only on (seed, step), and
checkpoints hold all three networks and the optimizer states.

Artifact (type `image_model`): a diffusers folder (safetensors) that
`StableDiffusionPipeline.from_pretrained(folder)` loads, + README.md.

One training step at the defaults (64 px, latent factor 4 → 16×16 latents, "tiny" presets: VAE 0.92 M,
UNet 4.1 M, text encoder 0.14 M weights), fp32, measured on a 2-core CPU shared with other work
(load 1–5, so the spread is wide):
    VAE step (batch 16):          1 thread 1.2–1.4 s;  2 threads 4–5 s (both cores busy elsewhere),
                                  1.0 s (idle); on 32-px crops 2 threads 0.2 s (idle)
    UNet + text step (batch 32):  1 thread 0.55–0.85 s;  2 threads 0.34 s (idle), 4.3 s (busy)
so the defaults (1000 VAE steps, three quarters on crops, + 4000 UNet steps) take about 8 min +
40–60 min on one such core. A run of
150 VAE + 120 UNet steps on 256 demo shapes took 290 s (1.21 s and 0.76 s a step): the VAE's
reconstructions had every shape and began to have their colours at step 150. CPU threads: the idle
cores when the run starts (engines.device.idle_cpu_threads); OMP_NUM_THREADS overrides.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from engines.training import (
    RunDir,
    TrainingLoop,
    adamw_with_schedule,
    artifact_dir,
    atomic_folder,
    dataset_name,
    is_main_process,
    keeps_torch_threads,
    load_latest,
    save_checkpoint,
    trainer_main,
)

LOSS_WINDOW = 20  # the reported losses: mean over this many last steps of a phase


@dataclass
class ImageScratchConfig:
    """Train a small Stable Diffusion from scratch on captioned images: a VAE, then a UNet + text encoder."""

    resolution: int = 64  # image size in pixels: 32 or 64
    latent_factor: Literal[4, 8] = 4  # pixels per latent pixel: 4 (16×16 latents at 64 px) or 8 (faster)
    vae_steps: int = 1000  # phase 1: VAE optimizer steps (skipped when base_model names a VAE to reuse)
    base_reuse: Literal["vae", "all"] = "vae"  # with a base model: reuse its VAE (a new UNet) or all of it (train it further)
    unet_steps: int = 4000  # phase 2: UNet + text encoder optimizer steps
    batch_size: int = 32  # images per UNet step
    vae_batch_size: int = 16  # images per VAE step
    learning_rate: float = 5e-4  # AdamW learning rate of the UNet and the text encoder
    vae_learning_rate: float = 1e-3  # Adam learning rate of the VAE (warm-up, then cosine decay)
    vae_crop: int = 32  # VAE phase: random crops of this many pixels, then whole images (0: off)
    vae_whole_share: float = 0.25  # with vae_crop: the share of the VAE steps, at the end, on whole images
    warmup_steps: int = 100  # UNet phase: linear learning-rate warm-up, then cosine decay
    vae_kl_weight: float = 1e-6  # weight of the KL term (per image) next to the reconstruction loss
    vae_reconstruction: Literal["l1", "mse"] = "l1"  # VAE reconstruction loss: L1 (as SD's autoencoder; flatter plain areas) or MSE
    unet_size: Literal["tiny", "small", "base"] = "tiny"  # UNet widths 32-64-128, 64-128-256 or 128-256-384
    vae_size: Literal["tiny", "small"] = "tiny"  # VAE widths 32-64-64 or 64-128-128
    text_encoder_size: Literal["tiny", "small", "base"] = "tiny"  # text encoder: 64×2, 128×4, 256×6 layers
    cfg_dropout: float = 0.1  # share of captions replaced by "" so classifier-free guidance works
    prediction_type: Literal["epsilon", "v_prediction"] = "v_prediction"  # what the UNet predicts: v, or the noise
    zero_terminal_snr: bool = True  # rescale the betas so the last timestep is pure noise (needs v_prediction)
    max_grad_norm: float = 1.0  # gradient-norm clipping (0: off)
    seed: int = 0  # seeds the weights, every batch, the noise and the samples
    save_every: int = 500  # steps between checkpoints and sample grids (0: at the end of each phase only)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    sample_prompts: list[str] | None = None  # prompts of the sample grids (None: 4 captions from the dataset)
    sample_seeds: int = 4  # images per prompt in a sample grid
    sample_steps: int = 25  # DDIM steps per sample
    guidance_scale: float = 4.0  # classifier-free guidance of the samples
    name: str = ""  # display name of the model (empty: "SD from scratch <res> px · <dataset name>")

    def __post_init__(self) -> None:
        if self.resolution not in (32, 64):
            raise ValueError(f"'resolution' must be 32 or 64, not {self.resolution}.")
        for name in ("unet_steps", "batch_size", "vae_batch_size", "keep_checkpoints", "sample_seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"'{name}' must be at least 1.")
        for name in ("vae_steps", "warmup_steps", "save_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"'{name}' must not be negative.")
        if self.vae_crop and (self.vae_crop % self.latent_factor or not self.latent_factor * 4 <= self.vae_crop
                              <= self.resolution):
            raise ValueError(f"'vae_crop' must be 0 or a multiple of {self.latent_factor} from "
                             f"{self.latent_factor * 4} to {self.resolution}.")
        if max(self.batch_size, self.vae_batch_size) > 1024:
            raise ValueError("'batch_size' and 'vae_batch_size' must be at most 1024.")
        for name in ("learning_rate", "vae_learning_rate"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"'{name}' must be between 0 and 1.")
        if not 0 < self.vae_whole_share <= 1:
            raise ValueError("'vae_whole_share' must be above 0 and at most 1.")
        if self.vae_kl_weight < 0 or self.max_grad_norm < 0:
            raise ValueError("'vae_kl_weight' and 'max_grad_norm' must not be negative.")
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError("'prediction_type' must be 'epsilon' or 'v_prediction'.")
        if self.zero_terminal_snr and self.prediction_type != "v_prediction":
            raise ValueError("'zero_terminal_snr' needs 'prediction_type' 'v_prediction': at the last timestep "
                             "the noise is the whole input, so there is nothing to predict.")
        if not 0 <= self.cfg_dropout < 1:
            raise ValueError("'cfg_dropout' must be at least 0 and below 1.")
        if not 1 <= self.sample_steps <= 150:
            raise ValueError("'sample_steps' must be between 1 and 150.")
        if not 0 <= self.guidance_scale <= 30:
            raise ValueError("'guidance_scale' must be between 0 and 30.")
        if self.sample_seeds > 16 or len(self.sample_prompts or []) > 16:
            raise ValueError("At most 16 'sample_prompts' and 16 'sample_seeds'.")
        if len(self.name) > 200:
            raise ValueError("'name' must be at most 200 characters.")

    @property
    def latent_size(self) -> int:
        return self.resolution // self.latent_factor


CONFIG_CLASS = ImageScratchConfig


def check_dataset(dataset_path: Path | None) -> None:
    """The studio's check before a job starts (ValueError → 422): a captioned image dataset."""
    from engines.image.scratch_data import check_dataset as check

    if dataset_path is None:
        raise ValueError("An image-scratch job needs a captioned image dataset: pick one.")
    check(Path(dataset_path))


# -- the run -------------------------------------------------------------------------------------
@keeps_torch_threads
def run(config: ImageScratchConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch

    from engines.device import idle_cpu_threads, resolve_device

    job = run_dir.read_job()
    if not job.dataset_path:
        raise ValueError("An image-scratch job needs a captioned image dataset: pick one.")
    device = resolve_device(job.device if job.device in ("cpu", "cuda", "mps") else "auto")
    if device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(idle_cpu_threads())
    return _train(config, run_dir, job, torch.device(device))


def _base_location(job: Any) -> str | None:
    """The folder of the job's base model (a trained, starter, local or cached hub image model), or None."""
    if not job.base_model:
        return None
    if job.base_model_path:
        return str(job.base_model_path)
    from engines.image.train_model import resolve_base

    return str(resolve_base(job, job.models_dir())[1])


def _reused(location: str, reuse: str, latent_size: int) -> dict[str, Any]:
    """The base model's parts a job reuses, in float32: its VAE, and with `reuse` "all" also its UNet,
    text encoder and tokenizer (so the job trains that model further instead of a new UNet)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    parts: dict[str, Any] = {"vae": AutoencoderKL.from_pretrained(location, subfolder="vae", use_safetensors=True).float()}
    if reuse == "all":
        unet = UNet2DConditionModel.from_pretrained(location, subfolder="unet", use_safetensors=True).float()
        if unet.config.sample_size != latent_size:
            raise ValueError(f"The base model draws {unet.config.sample_size}×{unet.config.sample_size} latents, "
                             f"this job's resolution gives {latent_size}×{latent_size}: set 'resolution' to match it.")
        parts.update(unet=unet, tokenizer=CLIPTokenizer.from_pretrained(location, subfolder="tokenizer"),
                     text_encoder=CLIPTextModel.from_pretrained(location, subfolder="text_encoder",
                                                                use_safetensors=True).float())  # fmt: skip
    return parts


def _train(config: ImageScratchConfig, run_dir: RunDir, job: Any, device: Any) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from engines.image import scratch_data as sd
    from engines.image import scratch_model as sm

    main = is_main_process()

    # 1. Data and components: images in memory, tokenizer from the captions, three fresh networks.
    data = sd.load_images(Path(job.dataset_path), config.resolution)
    prompts = list(config.sample_prompts or sd.default_sample_prompts(data.captions))
    location = _base_location(job)
    reused = _reused(location, config.base_reuse, config.latent_size) if location else {}
    tokenizer = reused.get("tokenizer") or sm.build_tokenizer(data.captions)
    vae = reused.get("vae")
    vae_steps = 0 if vae is not None else config.vae_steps
    with torch.random.fork_rng(devices=[]):  # the initial weights, leaving the caller's RNG as it was
        torch.manual_seed(config.seed)
        if vae is None:
            vae = sm.build_vae(config.vae_size, config.latent_factor, config.resolution)
        text_encoder = reused.get("text_encoder") or sm.build_text_encoder(config.text_encoder_size, tokenizer)
        latent_size = config.resolution // 2 ** (len(vae.config.block_out_channels) - 1)
        unet = reused.get("unet") or sm.build_unet(config.unet_size, latent_size, text_encoder.config.hidden_size)
    for module in (vae, text_encoder, unet):
        module.to(device).train()
    caption_ids = sm.tokenize(tokenizer, [*data.captions, ""]).to(device)  # (C + 1, T); the last is ""
    noise_scheduler = sm.noise_scheduler(config.prediction_type, config.zero_terminal_snr)
    num_timesteps = noise_scheduler.config.num_train_timesteps
    unet_params = [*unet.parameters(), *text_encoder.parameters()]
    opt_vae, sched_vae = adamw_with_schedule(
        list(vae.parameters()), lr=config.vae_learning_rate, weight_decay=0.0, schedule="cosine",
        warmup_steps=min(100, vae_steps // 10), total_steps=max(vae_steps, 1),
    )  # fmt: skip
    opt_unet, sched_unet = adamw_with_schedule(
        unet_params, lr=config.learning_rate, weight_decay=0.01, schedule="cosine",
        warmup_steps=min(config.warmup_steps, config.unet_steps // 10), total_steps=config.unet_steps,
    )  # fmt: skip
    total_steps = vae_steps + config.unet_steps
    crop_until = vae_steps - max(1, round(vae_steps * config.vae_whole_share))  # then whole images
    sizes = {name: sum(p.numel() for p in m.parameters()) for name, m in
             (("vae", vae), ("unet", unet), ("text_encoder", text_encoder))}  # fmt: skip

    # 2. Resume: all three networks, both optimizers (the VAE's only while its phase runs).
    ckpt = load_latest(run_dir, device=str(device)) if job.resume else None
    elapsed_before = 0.0
    if ckpt is not None:
        for prefix, module in (("vae.", vae), ("unet.", unet), ("text_encoder.", text_encoder)):
            module.load_state_dict(
                {k[len(prefix) :]: v for k, v in ckpt.tensors.items() if k.startswith(prefix)}
            )
        if "opt_vae" in ckpt.extra_state:
            opt_vae.load_state_dict(ckpt.extra_state["opt_vae"])
            if "sched_vae" in ckpt.extra_state:
                sched_vae.load_state_dict(ckpt.extra_state["sched_vae"])
        opt_unet.load_state_dict(ckpt.extra_state["opt_unet"])
        sched_unet.load_state_dict(ckpt.extra_state["sched_unet"])
        elapsed_before = float(ckpt.meta.get("train_time_s") or 0.0)
        print(f"image-scratch: resumed from step {ckpt.step} ({ckpt.path.name})", flush=True)
    start_step = ckpt.step if ckpt else 0

    latents: sd.LatentSet | None = None

    def cache_latents() -> sd.LatentSet:
        """Phase 2 starts: every image encoded once, the scaling factor measured and stored."""
        keep = float(vae.config.scaling_factor) if "unet" in reused else None  # the reused UNet's latent scale
        found = sd.encode_latents(vae, data, device, scaling=keep)
        vae.register_to_config(scaling_factor=found.scaling_factor)
        vae.requires_grad_(False)
        vae.eval()
        print(
            f"image-scratch: {len(data)} latents cached, scaling factor {found.scaling_factor:.4f}",
            flush=True,
        )
        return found

    if start_step >= vae_steps:
        latents = cache_latents()
    shown = data.pixels(torch.arange(min(8, len(data)))).to(device)  # the reconstruction grid's originals
    pipe = sm.pipeline(vae, text_encoder, tokenizer, unet,
                       sm.inference_scheduler(config.prediction_type, config.zero_terminal_snr))

    def write_grid(step: int, phase: str) -> str:
        run_dir.samples_dir.mkdir(parents=True, exist_ok=True)
        rel = f"samples/step-{step}.png"
        if phase == "vae":
            sm.reconstruction_grid(vae, shown, run_dir.path / rel)
        else:
            sm.sample_grid(pipe, prompts, run_dir.path / rel, seeds=config.sample_seeds, seed=config.seed,
                           steps=config.sample_steps, guidance=config.guidance_scale,
                           resolution=config.resolution)  # fmt: skip
        return rel

    seg_t0 = time.perf_counter()

    def checkpoint(step: int) -> None:
        if not main:
            return
        tensors = {f"{prefix}{k}": v for prefix, module in (("vae.", vae), ("unet.", unet),
                   ("text_encoder.", text_encoder)) for k, v in module.state_dict().items()}  # fmt: skip
        state: dict[str, Any] = {"opt_unet": opt_unet.state_dict(), "sched_unet": sched_unet.state_dict(),
                                 "step": step}  # fmt: skip
        if step < vae_steps:
            state["opt_vae"] = opt_vae.state_dict()
            state["sched_vae"] = sched_vae.state_dict()
        meta = {"kind": "image-scratch", "config": asdict(config), "vae_steps": vae_steps,
                "scaling_factor": latents.scaling_factor if latents else None,
                "train_time_s": round(elapsed_before + time.perf_counter() - seg_t0, 3)}  # fmt: skip
        path = save_checkpoint(run_dir, step, tensors, state, meta=meta, keep_last=config.keep_checkpoints)
        print(f"image-scratch: saved {path.name}", flush=True)

    print(
        f"image-scratch: {len(data)} images, {len(data.captions)} captions, {len(tokenizer)} tokens; "
        f"VAE {sizes['vae']:,} / UNet {sizes['unet']:,} / text {sizes['text_encoder']:,} weights; "
        f"{latent_size}×{latent_size} latents; steps {start_step + 1}..{total_steps} "
        f"({vae_steps} VAE) on {device}"
        + (f", {torch.get_num_threads()} thread(s)" if device.type == "cpu" else ""),
        flush=True,
    )

    # 3. Train: VAE steps, then UNet + text encoder steps; one event per step.
    loop = TrainingLoop(run_dir, name="image-scratch", start_step=start_step, total_steps=total_steps,
                        save_every=config.save_every, checkpoint=checkpoint, resume=job.resume, main=main)  # fmt: skip
    history: dict[str, list[float]] = {"vae": [], "unet": []}
    step_time = {"vae": 0.0, "unet": 0.0}
    with loop:
        for step in loop.steps():
            t0 = time.perf_counter()
            gen = sd.step_generator(config.seed, step)
            if step <= vae_steps:
                phase = "vae"
                x = data.pixels(sd.batch_indices(len(data), config.vae_batch_size, gen))  # (b, 3, R, R)
                if config.vae_crop and config.vae_crop < config.resolution and step <= crop_until:
                    x = sd.random_crops(x, config.vae_crop, gen)  # (b, 3, crop, crop)
                x = x.to(device)
                posterior = vae.encode(x).latent_dist
                recon = vae.decode(posterior.sample(generator=gen)).sample
                rec_loss = F.l1_loss(recon, x) if config.vae_reconstruction == "l1" else F.mse_loss(recon, x)
                kl = posterior.kl().mean()  # per image, summed over the latent
                loss = rec_loss + config.vae_kl_weight * kl
                fields: dict[str, Any] = {"rec_loss": round(rec_loss.item(), 6), "kl": round(kl.item(), 3),
                                          "lr": sched_vae.get_last_lr()[0]}  # fmt: skip
                _optimizer_step(loss, list(vae.parameters()), opt_vae, sched_vae, config.max_grad_norm)
            else:
                phase = "unet"
                if latents is None:
                    latents = cache_latents()
                b = sd.unet_batch(latents, data, gen, config.batch_size, num_timesteps, config.cfg_dropout)
                z, noise, t = b["latents"].to(device), b["noise"].to(device), b["timesteps"].to(device)
                rows = b["caption_rows"].to(device)
                ids = caption_ids[torch.where(rows < 0, len(data.captions), rows)]  # (b, T)
                emb = text_encoder(ids)[0]  # (b, T, D)
                pred = unet(noise_scheduler.add_noise(z, noise, t), t, encoder_hidden_states=emb).sample
                v = config.prediction_type == "v_prediction"
                loss = F.mse_loss(pred, noise_scheduler.get_velocity(z, noise, t) if v else noise)
                fields = {"lr": sched_unet.get_last_lr()[0]}
                _optimizer_step(loss, unet_params, opt_unet, sched_unet, config.max_grad_norm)
            step_time[phase] += time.perf_counter() - t0
            history[phase].append(loss.item())
            fields = {"loss": round(loss.item(), 6), "phase": phase, **fields, "total_steps": total_steps}
            if loop.save_point(step) or step == vae_steps:
                loop.save(step)
                if main:
                    fields["samples"] = [write_grid(step, phase)]
            loop.log(step, **fields)
            if loop.stop_requested(step):
                return {"status": "cancelled", "metrics": _metrics(history, latents)}

    # 4. The artifact: the pipeline folder, DDIM as its scheduler.
    train_time = elapsed_before + time.perf_counter() - seg_t0
    metrics = _metrics(history, latents)
    metrics.update(train_time_s=round(train_time, 2), images=len(data), resolution=config.resolution,
                   latent_size=latent_size, **{f"{k}_params": v for k, v in sizes.items()})  # fmt: skip
    for phase, n in (("vae", len(history["vae"])), ("unet", len(history["unet"]))):
        if n:
            metrics[f"s_per_{phase}_step"] = round(step_time[phase] / n, 4)
    ds_name = dataset_name(Path(job.dataset_path))
    name = (config.name or f"SD from scratch {config.resolution} px · {ds_name}")[:200]
    out_dir = artifact_dir(job, run_dir)
    if main:
        for module in (vae, text_encoder, unet):
            module.eval()
        card = sm.model_card(name, ds_name, job.dataset_id, asdict(config), metrics, sizes)
        with atomic_folder(out_dir) as tmp:
            sm.save_pipeline(pipe, tmp, card)
    print(f"image-scratch: done in {train_time:.1f} s, loss {metrics.get('loss')}", flush=True)
    artifact = {"type": "image_model", "path": str(out_dir), "base_model": job.base_model or "image-scratch",
                "name": name}  # fmt: skip
    return {"metrics": metrics, "artifact": artifact if main else None}


def _optimizer_step(
    loss: Any, params: list[Any], optimizer: Any, scheduler: Any, max_grad_norm: float
) -> None:
    import torch

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()


def _metrics(history: dict[str, list[float]], latents: Any) -> dict[str, Any]:
    """The last losses of each phase this process ran (mean of the last LOSS_WINDOW steps)."""
    out: dict[str, Any] = {}
    for phase, key in (("vae", "vae_loss"), ("unet", "loss")):
        values = history[phase][-LOSS_WINDOW:]
        if values:
            out[key] = round(sum(values) / len(values), 6)
    if latents is not None:
        out["scaling_factor"] = round(latents.scaling_factor, 6)
    return out


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
