"""Image augmentation for training (image LoRA and GAN), in plain PIL + numpy.

torchvision is not a dependency, so the few transforms the trainers need live here:

    resize the shorter side → square crop (random with "crop", else centre) → "flip" (p=0.5)
    → "rotate" (±10°, reflected border) → "color" (brightness/contrast/saturation ±20%)

Every random choice comes from the augmenter's own ``random.Random``, so a seed gives the
same sequence of images on every machine; nothing touches the global random state.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

if TYPE_CHECKING:  # torch is heavy: imported only when a tensor is asked for
    import torch

AUGMENTATIONS = ("flip", "rotate", "crop", "color")

MAX_ROTATION_DEG = 10.0  # "small" rotation: larger angles make the reflected border obvious
COLOR_JITTER = 0.2  # brightness, contrast and saturation each scaled by 1 ± this
CROP_ZOOM = 1.25  # with "crop", the shorter side is first resized to up to this × resolution


def validate_augment(names: Iterable[str] | None) -> list[str]:
    """The augmentation names in a canonical order, or ValueError naming the unknown ones."""
    if names is None:
        return []
    if isinstance(names, str):
        raise ValueError(
            f"augment must be a list of names, e.g. ['flip', 'color'], not the string {names!r}."
        )
    given = list(names)
    unknown = [n for n in given if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(
            f"Unknown augmentation {', '.join(repr(n) for n in unknown)}; choose from {', '.join(AUGMENTATIONS)}."
        )
    return [n for n in AUGMENTATIONS if n in given]


class ImageAugmenter:
    """Turns any RGB-convertible image into a ``resolution`` × ``resolution`` RGB training image."""

    def __init__(self, augment: list[str], resolution: int, seed: int | None = None):
        if resolution < 1:
            raise ValueError(f"resolution must be a positive number of pixels, not {resolution}.")
        self.augment = validate_augment(augment)
        self.resolution = int(resolution)
        self.rng = random.Random(seed)

    def __call__(self, img: Image.Image) -> Image.Image:
        img = img.convert("RGB")
        # 1. Resize the shorter side (a little larger with "crop", so that square images move too)
        zoom = self.rng.uniform(1.0, CROP_ZOOM) if "crop" in self.augment else 1.0
        img = _resize_shorter_side(img, max(self.resolution, round(self.resolution * zoom)))
        # 2. Square crop: random position with "crop", else the centre
        img = self._crop_square(img, random_position="crop" in self.augment)
        # 3. Horizontal flip, half of the time
        if "flip" in self.augment and self.rng.random() < 0.5:
            img = ImageOps.mirror(img)
        # 4. Small rotation; the corners are filled by reflecting the image, not with black
        if "rotate" in self.augment:
            img = _rotate_reflect(img, self.rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
        # 5. Colour jitter
        if "color" in self.augment:
            for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
                img = enhancer(img).enhance(self.rng.uniform(1 - COLOR_JITTER, 1 + COLOR_JITTER))
        return img

    def _crop_square(self, img: Image.Image, *, random_position: bool) -> Image.Image:
        w, h = img.size
        s = self.resolution
        if random_position:
            left, top = self.rng.randint(0, w - s), self.rng.randint(0, h - s)
        else:
            left, top = (w - s) // 2, (h - s) // 2
        return img.crop((left, top, left + s, top + s))


def _resize_shorter_side(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img if new == (w, h) else img.resize(new, Image.Resampling.BICUBIC)


def _rotate_reflect(img: Image.Image, angle: float) -> Image.Image:
    """Rotate about the centre, filling the uncovered corners with a mirror image of the edges."""
    w, h = img.size
    # A rotation by θ moves a corner at most ~sin(θ)·size outwards; pad that much by reflection.
    pad = min(w - 1, h - 1, math.ceil(max(w, h) * math.sin(math.radians(abs(angle)))) + 2)
    if pad <= 0:
        return img
    arr = np.pad(np.asarray(img), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")  # (H+2p, W+2p, 3)
    rotated = Image.fromarray(arr).rotate(angle, resample=Image.Resampling.BICUBIC)
    return rotated.crop((pad, pad, pad + w, pad + h))


def to_tensor_normalised(img: Image.Image) -> torch.Tensor:
    """An RGB image as a float tensor of shape (3, H, W) with values in [-1, 1]."""
    import torch

    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0  # (H, W, 3)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()  # (3, H, W)
