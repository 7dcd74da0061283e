"""The GAN's demo dataset: seeded images of the shapes world (engines/shapes) — one coloured circle,
square or triangle on a plain background, in the world's 8 named colours, captioned like
"a red circle on a blue background" — so a GAN can be trained end to end with no data and no network.

Only training combinations are drawn: the held-out ones stay unseen by every model the studio trains.
They are dealt evenly (render's `balanced`): the default 423 images are every one of the 141 training
captions three times. With independent draws, as before, 320 images left ~20 captions with none and
~30 with one; a conditional GAN draws a caption it saw once cleanly 1 time in 5, and one it saw
three times 3 in 4 (measured in docs/gan.md).
A seed gives the same images on every machine (see engines/shapes/render.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from engines.shapes import SHAPES, SIZE, training_combos
from engines.shapes import render as shapes_render

__all__ = ["DEFAULT_COUNT", "SHAPES", "SIZE", "DemoImage", "demo_images", "write_demo_folder"]

DEFAULT_COUNT = 3 * len(training_combos())  # every training caption three times: 423


@dataclass(frozen=True)
class DemoImage:
    image: Image.Image  # size × size RGB
    shape: str  # one of SHAPES
    caption: str  # e.g. "a red circle on a blue background"


def demo_images(n: int = DEFAULT_COUNT, seed: int = 0, size: int = SIZE) -> Iterator[DemoImage]:
    """`n` images, the same ones for the same seed (the first k do not depend on n)."""
    for combo, image in shapes_render.images(n, seed, held_out=False, size=size, balanced=True):
        yield DemoImage(image, combo.shape, combo.caption)


def write_demo_folder(folder: Path, n: int = DEFAULT_COUNT, seed: int = 0) -> list[Path]:
    """Write `demo-000000.png` … and a `metadata.jsonl` of captions; return every file written."""
    return shapes_render.write_dataset(folder, n, seed, held_out=False, prefix="demo", balanced=True)
