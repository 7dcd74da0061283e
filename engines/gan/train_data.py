"""The `gan` trainer's data: the image dataset read once (resized, centre-cropped, with baked
augmentations), its classes (captions) for a conditional GAN, and each step's batch, flips, noise
and classes — a function of (seed, step) only, which is what makes resume exact.

Nothing here imports the studio.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

AUGMENT_COPIES = 4  # augmented versions of each image when "crop", "rotate" or "color" is on
MAX_CLASSES = 1000  # more distinct captions than this are descriptions, not classes
MIN_PER_CLASS = 2  # a conditional GAN wants at least this many images per class on average
CONDITIONAL = ("auto", "on", "off")


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


def dataset_classes(folder: Path, mode: str) -> tuple[list[str], Any]:
    """(class names, label (N,) of each image in load_dataset's order) — ([], None) for an
    unconditional GAN.

    The classes are the dataset's distinct captions (metadata.jsonl "text"). "auto" conditions when
    every image has one and they repeat (2 … MAX_CLASSES of them, MIN_PER_CLASS images each on
    average, like the demo shapes' "a red circle on a blue background"); "on" insists (ValueError
    saying why not); "off" never conditions.
    """
    import torch

    if mode not in CONDITIONAL:
        raise ValueError(f"'conditional' must be one of {', '.join(CONDITIONAL)}, not {mode!r}.")
    if mode == "off":
        return [], None
    folder = Path(folder)
    names = _image_names(folder)
    captions = _captions(folder)
    texts = [captions.get(n, "").strip() for n in names]
    classes = sorted(set(texts))
    why = ""
    if not all(texts):
        why = f"{sum(not t for t in texts)} of its {len(texts)} images have no caption (metadata.jsonl 'text')"
    elif not 2 <= len(classes) <= MAX_CLASSES:
        why = f"it has {len(classes)} distinct caption(s); classes need 2 to {MAX_CLASSES}"
    elif len(texts) < MIN_PER_CLASS * len(classes):
        why = (f"its {len(texts)} images have {len(classes)} distinct captions; classes need "
               f"{MIN_PER_CLASS} images each on average")  # fmt: skip
    if why:
        if mode == "on":
            raise ValueError(f"A conditional GAN uses the captions as classes, but {why}. "
                             "Set conditional to 'auto' or 'off'.")  # fmt: skip
        return [], None
    index = {c: i for i, c in enumerate(classes)}
    return classes, torch.tensor([index[t] for t in texts])


def _captions(folder: Path) -> dict[str, str]:
    meta = folder / "metadata.jsonl"
    out: dict[str, str] = {}
    if meta.is_file():
        for line in meta.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if isinstance(row.get("text"), str):
                    out[str(row.get("file_name", ""))] = row["text"]
    return out


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


def step_labels(seed: int, step: int, labels: Any, batch_size: int) -> Any:
    """The classes (B,) of one step's generated images: drawn from the training images' own labels
    (so classes come as often as in the data); a function of (seed, step) only."""
    import torch

    g = torch.Generator().manual_seed(seed * 1_000_003 + step + 500_000_009)
    return labels[torch.randint(0, len(labels), (batch_size,), generator=g)]


def fixed_labels(seed: int, n: int, labels: Any, salt: int) -> Any:
    """`n` fixed classes for the sample grid and the scores, drawn like step_labels."""
    import torch

    g = torch.Generator().manual_seed(seed * 7919 + salt + 1_000)
    return labels[torch.randint(0, len(labels), (n,), generator=g)]


def fixed_latents(seed: int, n: int, nz: int, salt: int) -> Any:
    import torch

    return torch.randn(n, nz, generator=torch.Generator().manual_seed(seed * 7919 + salt))
