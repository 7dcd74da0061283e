"""An X/Y/Z plot as one picture: cells in rows (y) and columns (x), one block per z value side by
side, each axis value written beside its row or above its column (PIL's built-in font)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PAD = 4
FONT_SIZE = 12


def labelled_grid(tiles: list[Any], xs: list[str], ys: list[str], zs: list[str]):
    """`tiles`: PIL images or paths (None: a grey cell, e.g. withheld by the content filter), in
    z, y, x order with x fastest; the labels of each axis ("" for an absent axis)."""
    from PIL import Image, ImageDraw, ImageFont

    images = [Image.open(t).convert("RGB") if isinstance(t, str | Path) else t for t in tiles]
    w = max((im.width for im in images if im is not None), default=64)
    h = max((im.height for im in images if im is not None), default=64)
    font = ImageFont.load_default(size=FONT_SIZE)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_w(s: str) -> int:
        return int(probe.textlength(s, font=font))

    line = FONT_SIZE + PAD
    left = max((text_w(s) for s in ys), default=0) + 2 * PAD if any(ys) else PAD
    cell_w = max(w, max((text_w(s) for s in xs), default=0)) + PAD
    top = line * (2 if any(zs) else 1) + PAD
    block_w = left + cell_w * len(xs)
    canvas = Image.new("RGB", (block_w * len(zs), top + (h + PAD) * len(ys)), "white")
    draw = ImageDraw.Draw(canvas)
    per_block = len(xs) * len(ys)
    for zi, z in enumerate(zs):
        x0 = zi * block_w
        if z:
            draw.text((x0 + left, PAD), z, fill="black", font=font)
        for xi, label in enumerate(xs):
            draw.text((x0 + left + xi * cell_w, top - line), label, fill="black", font=font)
        for yi, label in enumerate(ys):
            y = top + yi * (h + PAD)
            draw.text((x0 + PAD, y + h // 2 - FONT_SIZE // 2), label, fill="black", font=font)
            for xi in range(len(xs)):
                im = images[zi * per_block + yi * len(xs) + xi]
                at = (x0 + left + xi * cell_w, y)
                if im is None:
                    draw.rectangle([at, (at[0] + w - 1, at[1] + h - 1)], fill=(128, 128, 128))
                else:
                    canvas.paste(im, at)
    return canvas
