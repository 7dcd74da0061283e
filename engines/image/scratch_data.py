"""The `image-scratch` trainer's data: a captioned image dataset checked (cheaply, before a job
starts) and read once into memory, the latents of every image encoded once by the trained VAE, and
each step's batch, noise and caption dropout — a function of (seed, step) only, which is what makes
resume exact.

Nothing here imports the studio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METADATA = "metadata.jsonl"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MIN_IMAGES = 2
SAMPLE_PROMPTS = 4  # default sample prompts: this many distinct captions, spread over the dataset


def check_dataset(folder: Path) -> list[tuple[str, str]]:
    """(file name, caption) of every image; ValueError with the fix for a dataset that cannot train a
    text-to-image model: not an image dataset, too few images, or images without captions. Reads only
    the manifest and the captions (cheap enough to run before a job starts)."""
    folder = Path(folder)
    manifest = _read_json(folder / "manifest.json") or {}
    name = manifest.get("name") or folder.name
    kind = manifest.get("kind", "image")
    if kind != "image":
        raise ValueError(
            f"An image-scratch job needs a captioned image dataset; '{name}' is a {kind} dataset."
        )
    rows = _metadata_rows(folder)
    if len(rows) < MIN_IMAGES:
        raise ValueError(
            f"The dataset '{name}' has {len(rows)} image(s); training a model from scratch needs at least "
            f"{MIN_IMAGES} (better thousands)."
        )
    missing = sum(not caption for _, caption in rows)
    if missing:
        raise ValueError(
            f"{missing} of {len(rows)} images in '{name}' have no caption; a text-to-image model learns from "
            f"captions. Upload captions ({METADATA} or a .txt beside each image)."
        )
    return rows


def _metadata_rows(folder: Path) -> list[tuple[str, str]]:
    """From metadata.jsonl (the studio's layout); in a plain folder without one, each image's caption
    is the .txt beside it."""
    meta = folder / METADATA
    if not meta.is_file():
        if not folder.is_dir():
            return []
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        return [(p.name, _read_text(p.with_suffix(".txt"))) for p in images]
    rows = []
    for line in meta.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            file_name = str(row.get("file_name") or "")
            if (
                file_name
                and "/" not in file_name
                and "\\" not in file_name
                and (folder / file_name).is_file()
            ):
                rows.append((file_name, str(row.get("text") or "").strip()))
    return rows


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


@dataclass
class ImageSet:
    """The dataset in memory: images as uint8, each image's caption as a row of `captions`."""

    images: Any  # (N, 3, R, R) uint8
    caption_index: Any  # (N,) long
    captions: list[str]  # distinct captions, in first-seen order

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def pixels(self, idx: Any) -> Any:
        """(b, 3, R, R) float in [-1, 1]."""
        return self.images[idx].float() / 127.5 - 1.0


def load_images(folder: Path, resolution: int) -> ImageSet:
    """Every captioned image, resized and centre-cropped to `resolution` (checked first)."""
    import numpy as np
    import torch
    from PIL import Image

    from engines.augment import ImageAugmenter

    rows = check_dataset(folder)
    resize = ImageAugmenter([], resolution)
    images = []
    for file_name, _ in rows:
        with Image.open(Path(folder) / file_name) as im:
            im.load()
            arr = np.array(resize(im).convert("RGB"), dtype=np.uint8)
        images.append(torch.from_numpy(arr).permute(2, 0, 1))  # (3, R, R)
    captions = list(dict.fromkeys(c for _, c in rows))
    row = {c: i for i, c in enumerate(captions)}
    return ImageSet(torch.stack(images), torch.tensor([row[c] for _, c in rows]), captions)


def default_sample_prompts(captions: list[str], n: int = SAMPLE_PROMPTS) -> list[str]:
    """`n` distinct captions spread over the dataset's (first-seen order)."""
    if len(captions) <= n:
        return list(captions)
    return [captions[i * len(captions) // n] for i in range(n)]


def step_generator(seed: int, step: int) -> Any:
    """The CPU generator behind everything random in one step."""
    import torch

    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def batch_indices(n: int, batch_size: int, generator: Any) -> Any:
    import torch

    return torch.randint(0, n, (batch_size,), generator=generator)


def random_crops(x: Any, size: int, generator: Any) -> Any:
    """(b, 3, size, size): a random `size`-pixel square of each image (offsets from `generator`)."""
    import torch

    b, _, h, w = x.shape
    ys = torch.randint(0, h - size + 1, (b,), generator=generator).tolist()
    xs = torch.randint(0, w - size + 1, (b,), generator=generator).tolist()
    return torch.stack([img[:, y : y + size, x0 : x0 + size] for img, y, x0 in zip(x, ys, xs, strict=True)])


@dataclass
class LatentSet:
    """The VAE's posterior of every image, encoded once with the trained VAE; scaled."""

    mean: Any  # (N, 4, h, w), times scaling_factor
    std: Any  # (N, 4, h, w), times scaling_factor
    scaling_factor: float  # 1 / std of the unscaled latent means: makes the latents unit-variance


def encode_latents(vae: Any, data: ImageSet, device: Any, batch: int = 64, scaling: float | None = None) -> LatentSet:
    """Latent means and stds of every image; the scaling factor measured from them (as SD's 0.18215
    was measured on its data), or `scaling` when given (a reused UNet learnt its base model's)."""
    import torch

    was_training = vae.training
    vae.eval()
    means, stds = [], []
    with torch.no_grad():
        for start in range(0, len(data), batch):
            idx = torch.arange(start, min(start + batch, len(data)))
            dist = vae.encode(data.pixels(idx).to(device)).latent_dist
            means.append(dist.mean.float().cpu())
            stds.append(dist.std.float().cpu())
    vae.train(was_training)
    mean, std = torch.cat(means), torch.cat(stds)
    if scaling is None:
        scaling = float(1.0 / mean.std().clamp_min(1e-6))
    return LatentSet(mean * scaling, std * scaling, scaling)


def unet_batch(
    latents: LatentSet, data: ImageSet, step_gen: Any, batch_size: int, num_timesteps: int, cfg_dropout: float
) -> dict[str, Any]:
    """One UNet step's inputs: latents drawn from their posteriors, noise, timesteps, and caption rows
    (-1 where the caption is dropped for classifier-free guidance)."""
    import torch

    idx = batch_indices(len(data), batch_size, step_gen)
    mean, std = latents.mean[idx], latents.std[idx]
    sample = mean + std * torch.randn(mean.shape, generator=step_gen)  # (b, 4, h, w)
    noise = torch.randn(mean.shape, generator=step_gen)
    timesteps = torch.randint(0, num_timesteps, (batch_size,), generator=step_gen)  # (b,)
    dropped = torch.rand(batch_size, generator=step_gen) < cfg_dropout
    rows = torch.where(dropped, torch.full_like(idx, -1), data.caption_index[idx])
    return {"latents": sample, "noise": noise, "timesteps": timesteps, "caption_rows": rows}
