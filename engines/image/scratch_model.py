"""The model side of the `image-scratch` trainer: the Stable Diffusion components built from size
presets (the same diffusers / transformers classes as a real SD 1.x), the tokenizer trained on the
captions, the sample grids, and the artifact — a diffusers folder that
`StableDiffusionPipeline.from_pretrained` loads.

Nothing here imports the studio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NUM_TRAIN_TIMESTEPS = 1000
BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}  # SD 1.x's schedule
TOKENIZER_VOCAB = 4096  # upper bound: BPE on a few hundred distinct words stops well below it
MAX_TOKENS = 32  # caption length the text encoder reads (SD's 77 buys nothing on short captions)

# UNet widths per block, from the latent resolution down. Attention (self + cross) only in the two
# lowest-resolution blocks and the mid block: at 16×16 latents that is 8×8 and 4×4.
UNET_PRESETS: dict[str, tuple[int, ...]] = {
    "tiny": (32, 64, 128),
    "small": (64, 128, 256),
    "base": (128, 256, 384),
}
# VAE widths: the first entry is repeated once more for a latent factor of 8 (one more downsampling)
VAE_PRESETS: dict[str, tuple[int, ...]] = {"tiny": (32, 64, 64), "small": (64, 128, 128)}
# text encoder: (hidden size, layers, heads)
TEXT_PRESETS: dict[str, tuple[int, int, int]] = {
    "tiny": (64, 2, 4),
    "small": (128, 4, 4),
    "base": (256, 6, 8),
}


def build_tokenizer(captions: list[str]) -> Any:
    """A CLIP-style BPE tokenizer trained on the captions (deterministic: same captions, same ids)."""
    from transformers import CLIPTokenizer

    from engines.starter import train_clip_bpe

    vocab, merges = train_clip_bpe(TOKENIZER_VOCAB, lines=captions)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_TOKENS)


def build_vae(preset: str, latent_factor: int, resolution: int) -> Any:
    """AutoencoderKL with log2(latent_factor) downsamplings and 4 latent channels; no attention."""
    from diffusers import AutoencoderKL

    widths = VAE_PRESETS[preset]
    if latent_factor == 8:
        widths = (widths[0], *widths)
    blocks = len(widths)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=widths,
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=resolution,
        mid_block_add_attention=False,  # attention at the latent resolution costs more than it helps here
    )


def build_unet(preset: str, latent_size: int, cross_attention_dim: int) -> Any:
    """UNet2DConditionModel: plain ResNet blocks at the latent resolution, cross-attention below it."""
    from diffusers import UNet2DConditionModel

    widths = UNET_PRESETS[preset]
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=4,
        out_channels=4,
        block_out_channels=widths,
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=32,
    )


def build_text_encoder(preset: str, tokenizer: Any) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    hidden, layers, heads = TEXT_PRESETS[preset]
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_attention_heads=heads,
        num_hidden_layers=layers,
        max_position_embeddings=MAX_TOKENS,
        projection_dim=hidden,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def _schedule(prediction_type: str, zero_terminal_snr: bool) -> dict[str, Any]:
    """The noise schedule both schedulers share. With `zero_terminal_snr` the betas are rescaled so
    that the last timestep is pure noise (Lin et al. 2024, "Common Diffusion Noise Schedules and
    Sample Steps are Flawed"), and drawing starts there ("trailing" timesteps). SD 1.x's schedule
    leaves sqrt(alpha_bar) = 0.068 of the image in its last step: the UNet learns to read an image's
    plain background colour from that leak, and at drawing time it reads it from the random noise
    instead of from the prompt. Zero terminal SNR needs v-prediction (epsilon carries no signal there)."""
    return {"num_train_timesteps": NUM_TRAIN_TIMESTEPS, "clip_sample": False, "prediction_type": prediction_type,
            "rescale_betas_zero_snr": zero_terminal_snr,
            "timestep_spacing": "trailing" if zero_terminal_snr else "leading", **BETAS}  # fmt: skip


def noise_scheduler(prediction_type: str = "epsilon", zero_terminal_snr: bool = False) -> Any:
    """DDPM: the forward process the UNet learns to undo."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**_schedule(prediction_type, zero_terminal_snr))


def inference_scheduler(prediction_type: str = "epsilon", zero_terminal_snr: bool = False) -> Any:
    """DDIM over the same betas: what the samples and the saved pipeline draw with."""
    from diffusers import DDIMScheduler

    # steps_offset 1 as SD 1.x ships it (the pipeline rewrites any other value); "trailing" ignores it
    return DDIMScheduler(set_alpha_to_one=False, steps_offset=1, **_schedule(prediction_type, zero_terminal_snr))


def tokenize(tokenizer: Any, captions: list[str]) -> Any:
    """(C, MAX_TOKENS) ids, padded as the pipeline pads a prompt."""
    return tokenizer(
        captions,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def pipeline(vae: Any, text_encoder: Any, tokenizer: Any, unet: Any, scheduler: Any | None = None) -> Any:
    """A StableDiffusionPipeline around the components being trained (no safety checker)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler or inference_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


# -- sample grids --------------------------------------------------------------------------------
def reconstruction_grid(vae: Any, images: Any, path: Path) -> None:
    """The VAE phase's progress: originals in the top row, their reconstructions below (latent means)."""
    import torch

    from engines.gan.generate import image_grid

    was_training = vae.training
    vae.eval()
    with torch.no_grad():
        recon = vae.decode(vae.encode(images).latent_dist.mean).sample  # (n, 3, R, R)
    vae.train(was_training)
    scale = 2 if images.shape[-1] <= 32 else 1
    image_grid(torch.cat([images, recon]), nrow=len(images), scale=scale).save(path)


def sample_grid(
    pipe: Any,
    prompts: list[str],
    path: Path,
    *,
    seeds: int,
    seed: int,
    steps: int,
    guidance: float,
    resolution: int,
) -> None:
    """One row per prompt, `seeds` images each (seed, seed + 1 …: the same noise at every save)."""
    import torch

    from engines.gan.generate import image_grid

    modules = (pipe.unet, pipe.text_encoder, pipe.vae)
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    rows = []
    with torch.no_grad():
        for prompt in prompts:
            generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(seeds)]  # CPU noise
            out = pipe([prompt] * seeds, num_inference_steps=steps, guidance_scale=guidance, width=resolution,
                       height=resolution, generator=generators, output_type="pt").images  # fmt: skip
            rows.append(out.cpu() * 2 - 1)  # (seeds, 3, R, R) in [-1, 1]
    for m, training in zip(modules, was_training, strict=True):
        m.train(training)
    scale = 2 if resolution <= 32 else 1
    image_grid(torch.cat(rows), nrow=seeds, scale=scale).save(path)


# -- the artifact --------------------------------------------------------------------------------
def save_pipeline(pipe: Any, out_dir: Path, readme: str) -> None:
    """The diffusers folder (safetensors) + README.md."""
    pipe.save_pretrained(out_dir, safe_serialization=True)
    (Path(out_dir) / "README.md").write_text(readme, encoding="utf-8")


def model_card(
    name: str, dataset: str, dataset_id: str | None, config: dict, metrics: dict, sizes: dict
) -> str:
    lines = [
        f"# {name}",
        "",
        "A small Stable Diffusion trained from scratch by AIGC Studio (job kind `image-scratch`) on the "
        f"image dataset '{dataset}'" + (f" (`{dataset_id}`)" if dataset_id else "") + ".",
        "",
        "Load it with `diffusers.StableDiffusionPipeline.from_pretrained(<this folder>)`.",
        "",
        "## Sizes",
        "",
        *[f"- {k}: {v}" for k, v in sizes.items()],
        "",
        "## Training",
        "",
        *[f"- {k}: {v}" for k, v in config.items()],
        "",
        "## Metrics",
        "",
        *[f"- {k}: {v}" for k, v in metrics.items()],
        "",
    ]
    return "\n".join(lines)
