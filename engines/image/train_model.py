"""The model side of the `image-lora` trainer: the base pipeline it starts from, the LoRA on the
UNet's attention, the progress samples drawn with the UNet being trained, and the artifact (a
diffusers LoRA folder with a model card).

Nothing here imports the studio.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.training import RunDir, atomic_folder

if TYPE_CHECKING:
    from engines.registry import ModelSpec

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


# -- the base model ------------------------------------------------------------------------------
def resolve_base(job: Any, models_root: Path) -> tuple[ModelSpec, str]:
    """(the job's base model, the folder / file / hub id to load it from)."""
    from engines.registry import ModelRegistry, ModelSpec

    if job.base_model_path:  # a trained model (an image-scratch job's): the studio resolved its folder
        folder = str(Path(job.base_model_path).resolve())
        return ModelSpec(job.base_model, "image", "trained", folder), folder

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


def add_lora(unet: Any, rank: int, alpha: float, dropout: float) -> list[Any]:
    """A fresh LoRA (gaussian init) on the UNet's attention projections, kept in float32 even under
    mixed precision; returns its weights, the only trainable ones."""
    import torch
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    unet.add_adapter(
        LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, init_lora_weights="gaussian",
                   target_modules=list(LORA_TARGETS))
    )  # fmt: skip
    cast_training_params(unet, dtype=torch.float32)
    return [p for p in unet.parameters() if p.requires_grad]


# -- progress samples ----------------------------------------------------------------------------
def sampling_pipeline(pipe: Any, unet: Any) -> Any:
    """A pipeline that draws with `unet` (the one being trained) and the rest of the base pipeline."""
    from diffusers import StableDiffusionPipeline

    sampler = StableDiffusionPipeline(
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=unet,
        scheduler=pipe.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    sampler.set_progress_bar_config(disable=True)
    return sampler


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


# -- the artifact --------------------------------------------------------------------------------
def save_lora(unet: Any, out_dir: Path, card: str) -> None:
    """Write the diffusers-format LoRA (+ its peft config as metadata, so lora_alpha survives) atomically."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    with atomic_folder(out_dir) as tmp:
        StableDiffusionPipeline.save_lora_weights(
            tmp,
            unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
            unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),
            safe_serialization=True,
        )
        (tmp / "README.md").write_text(card, encoding="utf-8")


def model_card(
    base: ModelSpec,
    dataset_name: str,
    dataset_id: str | None,
    config: Any,
    metrics: dict[str, Any],
    prompts: list[str],
) -> str:
    resolved = {k: metrics[k] for k in ("learning_rate", "resolution", "mixed_precision")}
    params = {k: v for k, v in {**asdict(config), **resolved}.items() if v not in (None, "", [])}
    base_id = base.id
    # random-weight starters are built in the data dir; trained starters ship with the studio
    where = f"studio-data/models/{base_id}" if base.is_random_starter else base_id
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
