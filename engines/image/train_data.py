"""The `image-lora` trainer's data: captioned images read once, encoded once (VAE latents and CLIP
caption embeddings), then batches drawn from them by seed — every random choice of a step depends
only on (seed, step), which is what makes resume exact — and the diffusion loss on a batch.

Nothing here imports the studio.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METADATA = "metadata.jsonl"
SAMPLE_PROMPTS = 2  # default progress-sample prompts: this many distinct captions
EVAL_IMAGES = 32  # validation loss: at most this many training images …
EVAL_TIMESTEPS = 4  # … each noised at this many fixed timesteps


def read_captioned_images(dataset_path: Path, instance_prompt: str) -> list[tuple[Path, str]]:
    """(image file, caption) pairs from the dataset's metadata.jsonl; empty captions → instance_prompt."""
    folder = Path(dataset_path).resolve()
    pairs = []
    with open(folder / METADATA, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                caption = str(row.get("text") or "").strip() or instance_prompt.strip()
                path = (folder / str(row["file_name"])).resolve()
                if not path.is_relative_to(folder):
                    raise ValueError(f"{METADATA} names a file outside the dataset: {row['file_name']!r}.")
                pairs.append((path, caption))
    if not pairs:
        raise ValueError("The dataset has no images.")
    missing = sum(not caption for _, caption in pairs)
    if missing:
        raise ValueError(
            f"{missing} of {len(pairs)} images have no caption. Set 'instance_prompt' (e.g. 'a photo in "
            "sks style') to caption them, or upload captions (metadata.jsonl or a .txt beside each image)."
        )
    return pairs


def default_sample_prompts(captions: list[str]) -> list[str]:
    return list(dict.fromkeys(captions))[:SAMPLE_PROMPTS]


def batch_indices(n: int, batch_size: int, seed: int, micro_index: int) -> list[int]:
    """Micro-batch `micro_index` of a seeded shuffle per epoch: depends only on its arguments."""
    per_epoch = math.ceil(n / batch_size)
    epoch, pos = divmod(micro_index, per_epoch)
    order = random.Random(seed * 1_000_003 + epoch).sample(range(n), n)
    return order[pos * batch_size : (pos + 1) * batch_size]


def step_generator(seed: int, micro_index: int) -> Any:
    """The CPU generator behind one micro-batch's noise, timesteps and latent sample."""
    import torch

    return torch.Generator().manual_seed(seed * 1_000_033 + micro_index + 1)


@dataclass
class TrainingSet:
    """Everything the loop needs, computed once: latent distributions and caption embeddings."""

    latent_mean: Any  # (N, 4, h, w), already multiplied by the VAE's scaling factor
    latent_std: Any  # (N, 4, h, w)
    embeddings: Any  # (C, 77, D): one per distinct caption
    caption_index: Any  # (N,) item → row of `embeddings`
    captions: list[str]  # the distinct captions, in first-seen order

    def __len__(self) -> int:
        return int(self.latent_mean.shape[0])


def encode_training_set(
    pairs: list[tuple[Path, str]],
    resolution: int,
    vae: Any,
    text_encoder: Any,
    tokenizer: Any,
    device: Any,
    *,
    augment: list[str],
    copies: int,
    seed: int,
) -> TrainingSet:
    """VAE latents of every image and CLIP embeddings of every caption, on the CPU in float32; with
    `augment`, `copies` augmented versions of each image (seeded)."""
    import torch
    from PIL import Image

    from engines.augment import ImageAugmenter, to_tensor_normalised

    augmenter = ImageAugmenter(augment, resolution, seed=seed)
    copies = copies if augment else 1
    items: list[tuple[Path, str]] = [pair for _ in range(copies) for pair in pairs]
    dtype = next(vae.parameters()).dtype
    scaling = vae.config.scaling_factor
    means, stds = [], []
    with torch.no_grad():
        for start in range(0, len(items), 8):
            chunk = items[start : start + 8]
            pixels = torch.stack(
                [to_tensor_normalised(augmenter(Image.open(p))) for p, _ in chunk]
            )  # (b, 3, R, R) in [-1, 1]
            dist = vae.encode(pixels.to(device, dtype)).latent_dist
            means.append(dist.mean.float().cpu() * scaling)  # (b, 4, R/f, R/f)
            stds.append(dist.std.float().cpu() * scaling)
        captions = list(dict.fromkeys(c for _, c in items))
        ids = tokenizer(
            captions,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        embeddings = torch.cat(
            [text_encoder(ids[i : i + 16].to(device))[0].float().cpu() for i in range(0, len(captions), 16)]
        )  # (C, 77, D)
    row = {c: i for i, c in enumerate(captions)}
    return TrainingSet(
        latent_mean=torch.cat(means),
        latent_std=torch.cat(stds),
        embeddings=embeddings,
        caption_index=torch.tensor([row[c] for _, c in items]),
        captions=captions,
    )


def training_batch(data: TrainingSet, idx: list[int], generator: Any, num_timesteps: int) -> dict[str, Any]:
    """Latents drawn from their cached distributions, fresh noise and timesteps (all on the CPU)."""
    import torch

    mean, std = data.latent_mean[idx], data.latent_std[idx]
    latents = mean + std * torch.randn(mean.shape, generator=generator)  # (b, 4, h, w)
    noise = torch.randn(mean.shape, generator=generator)
    timesteps = torch.randint(0, num_timesteps, (len(idx),), generator=generator)  # (b,)
    return {
        "latents": latents,
        "noise": noise,
        "timesteps": timesteps,
        "embeddings": data.embeddings[data.caption_index[idx]],
    }


def validation_batches(
    data: TrainingSet, num_timesteps: int, seed: int, batch_size: int
) -> list[dict[str, Any]]:
    """The fixed validation set: up to EVAL_IMAGES items × EVAL_TIMESTEPS spread timesteps, fixed noise."""
    import torch

    n = min(len(data), EVAL_IMAGES)
    generator = torch.Generator().manual_seed(seed + 7919)
    ts = torch.linspace(0, num_timesteps - 1, EVAL_TIMESTEPS + 2)[1:-1].round().long()  # skip both ends
    rows = [(i, int(t)) for i in range(n) for t in ts]
    noise = torch.randn((len(rows), *data.latent_mean.shape[1:]), generator=generator)
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        idx = [i for i, _ in chunk]
        out.append(
            {
                "latents": data.latent_mean[idx],
                "noise": noise[start : start + len(chunk)],
                "timesteps": torch.tensor([t for _, t in chunk]),
                "embeddings": data.embeddings[data.caption_index[idx]],
            }
        )
    return out


def diffusion_loss(unet: Any, noise_scheduler: Any, batch: dict[str, Any], device: Any, dtype: Any) -> Any:
    """Mean squared error of the UNet's prediction (noise, or velocity for v-prediction models)."""
    import torch.nn.functional as F

    latents, noise, t = batch["latents"].to(device), batch["noise"].to(device), batch["timesteps"].to(device)
    noisy = noise_scheduler.add_noise(latents, noise, t)  # (b, 4, h, w)
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, t)
    else:
        target = noise
    pred = unet(noisy.to(dtype), t, encoder_hidden_states=batch["embeddings"].to(device, dtype)).sample
    return F.mse_loss(pred.float(), target.float())


def validation_loss(
    unet: Any, noise_scheduler: Any, batches: list[dict[str, Any]], device: Any, dtype: Any, autocast: Any
) -> float:
    import torch

    was_training = unet.training
    unet.eval()
    total, count = 0.0, 0
    with torch.no_grad(), autocast():
        for batch in batches:
            n = len(batch["timesteps"])
            total += diffusion_loss(unet, noise_scheduler, batch, device, dtype).item() * n
            count += n
    unet.train(was_training)
    return total / max(count, 1)
