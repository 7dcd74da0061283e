"""The shapes world: one coloured object on a plain background, named by a caption such as
"a red circle on a blue background". The image starter is trained on it, the GAN's demo data draws
from it, and the detector in `engines.shapes.detect` scores what a model paints against the caption.

This module owns the vocabulary (colours with their RGB, shapes), the caption format, and which
combinations are held out of every training set so that prompt adherence is measured on
combinations a model never saw.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

# Named colours and the RGB the renderer paints them with: far apart in RGB, so a detector can tell
# them by nearest colour.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (245, 225, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (140, 50, 180),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZE = 64  # pixels per side by default


@dataclass(frozen=True)
class Combo:
    colour: str  # the object's colour
    shape: str
    background: str  # the background's colour, never the object's

    @property
    def caption(self) -> str:
        return caption(self.colour, self.shape, self.background)


def caption(colour: str, shape: str, background: str) -> str:
    return f"{_a(colour)} {colour} {shape} on {_a(background)} {background} background"


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


_CAPTION = re.compile(r"\ban? (\w+) (\w+) on an? (\w+) background\b")


def parse_caption(text: str) -> Combo | None:
    """The combination a caption names (None when it names none of the shapes world)."""
    m = _CAPTION.search(text.lower())
    if not m:
        return None
    colour, shape, background = m.groups()
    if colour in COLOURS and shape in SHAPES and background in COLOURS and colour != background:
        return Combo(colour, shape, background)
    return None


def all_combos() -> list[Combo]:
    """Every object colour × shape × background colour (other than the object's): 8 × 3 × 7 = 168."""
    names = list(COLOURS)
    return [Combo(c, s, b) for c, s, b in itertools.product(names, SHAPES, names) if c != b]


def is_held_out(combo: Combo) -> bool:
    """One combination in six, chosen by a fixed rule so every colour, shape and background still
    appears in training in other combinations."""
    names = list(COLOURS)
    ci, si, bi = names.index(combo.colour), SHAPES.index(combo.shape), names.index(combo.background)
    return (ci * 3 + si * 5 + bi * 7) % 6 == 0


def held_out_combos() -> list[Combo]:
    return [c for c in all_combos() if is_held_out(c)]


def training_combos() -> list[Combo]:
    return [c for c in all_combos() if not is_held_out(c)]
