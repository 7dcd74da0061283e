"""A seeded procedural image set — one coloured circle, square or triangle on a plain background —
so a GAN can be trained end to end with no data and no network.

Every choice comes from one `random.Random(seed)`, and Pillow draws deterministically, so a seed
gives the same images on every machine. Shapes are drawn at 2× and downsampled for smooth edges.
"""

from __future__ import annotations

import colorsys
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
SIZE = 64  # pixels per side of each image
DEFAULT_COUNT = 320
SUPERSAMPLE = 2


@dataclass(frozen=True)
class DemoImage:
    image: Image.Image  # SIZE × SIZE RGB
    shape: str  # one of SHAPES
    caption: str  # e.g. "a red circle on a dark blue background"


def demo_images(n: int = DEFAULT_COUNT, seed: int = 0, size: int = SIZE) -> Iterator[DemoImage]:
    """`n` images, the same ones for the same seed (the first k do not depend on n)."""
    if not 1 <= n <= 100_000:
        raise ValueError(f"n must be between 1 and 100000, not {n}.")
    rng = random.Random(seed)
    for _ in range(n):
        yield _draw(rng, size)


def _draw(rng: random.Random, size: int) -> DemoImage:
    # 1. Background: a plain colour, dark or light; the shape gets a clearly different hue and lightness
    bg_hue, bg_dark = rng.random(), rng.random() < 0.5
    bg = _rgb(bg_hue, 0.25 if bg_dark else 0.85, rng.uniform(0.3, 0.7))
    fg_hue = (bg_hue + rng.uniform(0.25, 0.75)) % 1.0
    fg = _rgb(fg_hue, rng.uniform(0.6, 0.75) if bg_dark else rng.uniform(0.3, 0.45), rng.uniform(0.7, 1.0))
    # 2. The shape: a random kind, size and position (always fully inside the image)
    shape = rng.choice(SHAPES)
    big = size * SUPERSAMPLE
    side = rng.uniform(0.35, 0.7) * big
    x0 = rng.uniform(0.05 * big, big - side - 0.05 * big)
    y0 = rng.uniform(0.05 * big, big - side - 0.05 * big)
    img = Image.new("RGB", (big, big), bg)
    draw = ImageDraw.Draw(img)
    box = (x0, y0, x0 + side, y0 + side)
    if shape == "circle":
        draw.ellipse(box, fill=fg)
    elif shape == "square":
        draw.rectangle(box, fill=fg)
    else:
        draw.polygon([(x0 + side / 2, y0), (x0 + side, y0 + side), (x0, y0 + side)], fill=fg)
    image = img.resize((size, size), Image.Resampling.LANCZOS)
    caption = f"a {_colour_name(fg_hue)} {shape} on a {'dark' if bg_dark else 'light'} {_colour_name(bg_hue)} background"
    return DemoImage(image, shape, caption)


def _rgb(hue: float, lightness: float, saturation: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return round(r * 255), round(g * 255), round(b * 255)


_HUE_NAMES = (
    (15, "red"),
    (45, "orange"),
    (70, "yellow"),
    (160, "green"),
    (200, "cyan"),
    (260, "blue"),
    (290, "purple"),
    (340, "pink"),
    (360, "red"),
)  # (upper bound in degrees, name)


def _colour_name(hue: float) -> str:
    degrees = hue * 360
    return next(name for bound, name in _HUE_NAMES if degrees < bound or bound == 360)


def write_demo_folder(folder: Path, n: int = DEFAULT_COUNT, seed: int = 0) -> list[Path]:
    """Write `demo-000000.png` … and a `metadata.jsonl` of captions; return every file written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows = []
    for i, item in enumerate(demo_images(n, seed)):
        path = folder / f"demo-{i:06d}.png"
        item.image.save(path, format="PNG")
        written.append(path)
        rows.append({"file_name": path.name, "text": item.caption})
    metadata = folder / "metadata.jsonl"
    metadata.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    written.append(metadata)
    return written
