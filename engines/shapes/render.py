"""Draw the shapes world: one object of a combination's colour and shape on a plain background of its
colour, at a random size (35–70 % of the side) and position (always fully inside, with a 5 % margin).

Every choice comes from a `random.Random`, and Pillow draws deterministically, so a seed gives the
same images on every machine. Shapes are drawn at SUPERSAMPLE× and averaged down (a box filter: each
pixel is the share of it the shape covers), which gives smooth edges and no ringing on the plain
background.

A dataset is a folder of PNGs and a `metadata.jsonl` of `{"file_name", "text"}` rows — the format the
studio's image datasets, the image trainer and the GAN trainer read.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw

from engines.shapes import COLOURS, SIZE, Combo, held_out_combos, training_combos

SUPERSAMPLE = 4  # draw at 4× and average down: edge pixels get the share the shape covers
MIN_SIDE, MAX_SIDE = 0.35, 0.70  # the object's bounding box, as a share of the image side
MARGIN = 0.05  # the object keeps this share of the side away from every edge
METADATA = "metadata.jsonl"
MAX_IMAGES = 100_000


def render(
    combo: Combo, rng: random.Random | int, size: int = SIZE, supersample: int = SUPERSAMPLE
) -> Image.Image:
    """One `size` × `size` RGB image of `combo`; `rng` (or a seed for one) picks the size and position."""
    if combo.colour not in COLOURS or combo.background not in COLOURS or combo.colour == combo.background:
        raise ValueError(f"not a combination of the shapes world: {combo}.")
    if not 8 <= size <= 1024:
        raise ValueError(f"size must be between 8 and 1024, not {size}.")
    if isinstance(rng, int):
        rng = random.Random(rng)
    # 1. Size and position, in supersampled pixels
    big = size * supersample
    side = rng.uniform(MIN_SIDE, MAX_SIDE) * big
    x0 = rng.uniform(MARGIN * big, big - side - MARGIN * big)
    y0 = rng.uniform(MARGIN * big, big - side - MARGIN * big)
    # 2. Draw: the box's corners are pixel edges, so a square covers exactly side × side
    img = Image.new("RGB", (big, big), COLOURS[combo.background])
    draw = ImageDraw.Draw(img)
    fg = COLOURS[combo.colour]
    box = (round(x0), round(y0), round(x0 + side) - 1, round(y0 + side) - 1)
    if combo.shape == "circle":
        draw.ellipse(box, fill=fg)
    elif combo.shape == "square":
        draw.rectangle(box, fill=fg)
    elif combo.shape == "triangle":  # apex up, base at the bottom
        left, top, right, bottom = box
        draw.polygon([((left + right) / 2, top), (right, bottom), (left, bottom)], fill=fg)
    else:
        raise ValueError(f"unknown shape {combo.shape!r}.")
    # 3. Average down to the final size
    return img.reduce(supersample) if supersample > 1 else img


def sample_combos(n: int, seed: int, held_out: bool = False, balanced: bool = False) -> list[Combo]:
    """`n` combinations drawn uniformly from the training ones (or the held-out ones); the first k do
    not depend on n. `balanced`: dealt from shuffled decks of the whole pool instead, so every
    combination has ⌊n / pool⌋ or one more images (with independent draws some have none)."""
    _check_count(n)
    pool = held_out_combos() if held_out else training_combos()
    rng = random.Random(seed)
    if not balanced:
        return [rng.choice(pool) for _ in range(n)]
    dealt: list[Combo] = []
    while len(dealt) < n:
        deck = list(pool)
        rng.shuffle(deck)
        dealt += deck
    return dealt[:n]


def images(
    n: int, seed: int, held_out: bool = False, size: int = SIZE, balanced: bool = False
) -> Iterator[tuple[Combo, Image.Image]]:
    """`n` (combination, image) pairs, the same for the same seed; the first k do not depend on n."""
    geometry = random.Random(f"{seed}:geometry")  # a stream of its own: combos stay sample_combos'
    for combo in sample_combos(n, seed, held_out, balanced):
        yield combo, render(combo, geometry, size)


def write_dataset(
    folder: Path,
    n: int,
    seed: int,
    held_out: bool = False,
    size: int = SIZE,
    prefix: str = "shape",
    balanced: bool = False,
) -> list[Path]:
    """Write `<prefix>-000000.png` … and a `metadata.jsonl` of captions; return every file written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows = []
    for i, (combo, image) in enumerate(images(n, seed, held_out, size, balanced)):
        path = folder / f"{prefix}-{i:06d}.png"
        image.save(path, format="PNG")
        written.append(path)
        rows.append({"file_name": path.name, "text": combo.caption})
    metadata = folder / METADATA
    metadata.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    written.append(metadata)
    return written


def _check_count(n: int) -> None:
    if not 1 <= n <= MAX_IMAGES:
        raise ValueError(f"n must be between 1 and {MAX_IMAGES}, not {n}.")
