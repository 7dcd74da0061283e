"""The `gan` trainer's data: the image dataset read once (resized, centre-cropped, with baked
augmentations), and each step's batch, flips and noise — a function of (seed, step) only, which
is what makes resume exact.

Nothing here imports the studio.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

AUGMENT_COPIES = 4  # augmented versions of each image when "crop", "rotate" or "color" is on


def load_dataset(folder: Path, resolution: int, augment: list[str], seed: int) -> tuple[Any, Any, str]:
    """(train images, plain images, dataset name): uint8 tensors (N', 3, R, R) and (N, 3, R, R).

    The plain set is resized + centre-cropped only (the quality score compares against it); the
    train set adds AUGMENT_COPIES augmented versions when augmentations other than flip are on.
    """
    import numpy as np
    import torch
    from PIL import Image

    from engines.augment import ImageAugmenter

    folder = Path(folder)
    manifest = _read_json(folder / "manifest.json") or {}
    if manifest.get("kind", "image") != "image":
        raise ValueError(
            f"A gan job needs an image dataset; '{manifest.get('name')}' is {manifest.get('kind')}."
        )
    names = _image_names(folder)
    if len(names) < 2:
        raise ValueError(
            f"The dataset in {folder} has {len(names)} image(s); a GAN needs at least 2 (better hundreds)."
        )

    def as_uint8(img: Image.Image) -> Any:
        return torch.from_numpy(np.array(img.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)  # (3, R, R)

    plain_aug = ImageAugmenter([], resolution)
    baked = [a for a in augment if a != "flip"]
    baked_aug = ImageAugmenter(baked, resolution, seed=seed) if baked else None
    plain, train = [], []
    for name in names:
        with Image.open(folder / name) as im:
            im.load()
            plain.append(as_uint8(plain_aug(im)))
            if baked_aug is not None:
                train.extend(as_uint8(baked_aug(im)) for _ in range(AUGMENT_COPIES))
    plain_t = torch.stack(plain)
    train_t = torch.stack(train) if train else plain_t
    return train_t, plain_t, str(manifest.get("name") or folder.name)


def _image_names(folder: Path) -> list[str]:
    meta = folder / "metadata.jsonl"
    if meta.is_file():
        names = []
        for line in meta.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                name = str(row.get("file_name", ""))
                if name and "/" not in name and "\\" not in name and (folder / name).is_file():
                    names.append(name)
        return names
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def step_batch(seed: int, step: int, num_images: int, batch_size: int, nz: int) -> tuple[Any, Any, Any]:
    """(indices (B,), flip mask (B,), noise (B, nz)) of one step: a function of (seed, step) only."""
    import torch

    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    idx = torch.randint(0, num_images, (batch_size,), generator=g)
    flips = torch.rand(batch_size, generator=g) < 0.5
    z = torch.randn(batch_size, nz, generator=g)
    return idx, flips, z


def fixed_latents(seed: int, n: int, nz: int, salt: int) -> Any:
    import torch

    return torch.randn(n, nz, generator=torch.Generator().manual_seed(seed * 7919 + salt))
