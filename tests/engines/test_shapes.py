"""The shapes world: the renderer and the detector that scores images against their captions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engines.shapes import COLOURS, SHAPES, Combo, all_combos, is_held_out, parse_caption
from engines.shapes.render import images, render, sample_combos, write_dataset


def pixels(img) -> np.ndarray:
    return np.asarray(img.convert("RGB")).astype(int)


# -- the renderer ----------------------------------------------------------------------------------
def test_render_paints_one_object_of_the_combos_colour_on_its_plain_background():
    for i, combo in enumerate(all_combos()[::7]):
        seed = i
        img = render(combo, seed)
        assert img.size == (64, 64) and img.mode == "RGB"
        a = pixels(img)
        border = np.concatenate(
            [a[:2].reshape(-1, 3), a[-2:].reshape(-1, 3), a[:, :2].reshape(-1, 3), a[:, -2:].reshape(-1, 3)]
        )
        assert (border == COLOURS[combo.background]).all()  # plain, and the object fully inside
        fg = (a == COLOURS[combo.colour]).all(-1).mean()
        assert 0.35**2 * 0.4 < fg < 0.7**2  # a triangle of the smallest size … a square of the largest
        assert np.array_equal(a, pixels(render(combo, seed)))  # the seed decides
    assert render(Combo("red", "circle", "blue"), 0, size=32).size == (32, 32)
    with pytest.raises(ValueError):
        render(Combo("red", "circle", "red"), 0)


def test_sample_combos_and_datasets_are_seeded_and_keep_held_out_combos_apart(tmp_path):
    train = sample_combos(300, seed=1)
    assert train == sample_combos(300, seed=1) and train[:10] == sample_combos(10, seed=1)
    assert train != sample_combos(300, seed=2)
    assert not any(is_held_out(c) for c in train)
    assert {c.shape for c in train} == set(SHAPES) and {c.colour for c in train} == set(COLOURS)
    assert all(is_held_out(c) for c in sample_combos(50, seed=1, held_out=True))

    files = write_dataset(tmp_path, n=6, seed=3)
    assert [f.name for f in files] == [f"shape-{i:06d}.png" for i in range(6)] + ["metadata.jsonl"]
    rows = [json.loads(line) for line in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    pairs = list(images(6, seed=3))
    assert [parse_caption(r["text"]) for r in rows] == [c for c, _ in pairs]
    assert [r["file_name"] for r in rows] == [f.name for f in files[:-1]]
    from PIL import Image

    assert np.array_equal(pixels(Image.open(files[2])), pixels(pairs[2][1]))
