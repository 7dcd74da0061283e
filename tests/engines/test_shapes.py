"""The shapes world: the renderer and the detector that scores images against their captions."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageFilter

from engines.shapes import COLOURS, SHAPES, Combo, all_combos, is_held_out, parse_caption, training_combos
from engines.shapes.detect import adherence, clean_share, detect
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
    # balanced: dealt from shuffled decks, every training combo 3 times in 3 decks, seeded, a prefix stays a prefix
    dealt = sample_combos(3 * len(training_combos()), seed=1, balanced=True)
    assert set(Counter(dealt).values()) == {3} and set(dealt) == set(training_combos())
    assert dealt[:50] == sample_combos(50, seed=1, balanced=True) and dealt != sample_combos(len(dealt), seed=2, balanced=True)

    files = write_dataset(tmp_path, n=6, seed=3)
    assert [f.name for f in files] == [f"shape-{i:06d}.png" for i in range(6)] + ["metadata.jsonl"]
    rows = [json.loads(line) for line in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    pairs = list(images(6, seed=3))
    assert [parse_caption(r["text"]) for r in rows] == [c for c, _ in pairs]
    assert [r["file_name"] for r in rows] == [f.name for f in files[:-1]]
    assert np.array_equal(pixels(Image.open(files[2])), pixels(pairs[2][1]))


# -- the detector ----------------------------------------------------------------------------------
def test_the_detector_reads_the_renderers_images_at_64_and_at_32_px():
    pairs = list(images(240, seed=11)) + list(images(60, seed=12, held_out=True))
    combos = [c for c, _ in pairs]
    full = [im for _, im in pairs]
    small = [im.resize((32, 32), Image.Resampling.BOX) for im in full]  # read upscaled inside
    for imgs in (full, small):
        found = [detect(im) for im in imgs]
        for part in ("background", "colour", "shape"):
            right = sum(getattr(d, part) == getattr(c, part) for d, c in zip(found, combos, strict=True))
            assert right >= 0.98 * len(combos), part
        assert sum(d.clean for d in found) >= 0.98 * len(combos)
    assert adherence(full[:30], combos[:30]) == {"background": 1.0, "colour": 1.0, "shape": 1.0, "all": 1.0}
    assert clean_share(small[:30]) == 1.0
    d = detect(np.asarray(full[0]))  # arrays too
    assert (d.background, d.colour, d.shape, d.clean) == (
        combos[0].background,
        combos[0].colour,
        combos[0].shape,
        True,
    )
    assert d.reason == "" and d.border_rms == 0 and 0.35**2 * 0.4 < d.object_share < 0.5


def test_noise_blobs_noisy_backgrounds_and_two_objects_are_not_clean():
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(20)]
    assert clean_share(noise) == 0 and all(detect(n).shape is None for n in noise)
    assert detect(noise[0]).background is None

    blobs = [
        render(Combo("red", s, "blue"), i).filter(ImageFilter.GaussianBlur(2))
        for i, s in enumerate(SHAPES * 4)
    ]
    assert clean_share(blobs) == 0 and all(detect(b).shape is None for b in blobs)
    assert "blurred" in detect(blobs[0]).reason

    shape = np.asarray(render(Combo("white", "square", "black"), 3)).astype(float)
    noisy = np.clip(shape + rng.normal(0, 25, shape.shape), 0, 255).astype(np.uint8)  # the GAN's early look
    assert not detect(noisy).clean and "border" in detect(noisy).reason

    two = np.asarray(render(Combo("white", "circle", "black"), 0)).copy()
    two[4:12, 4:12] = COLOURS["red"]  # a second object in a corner
    assert not detect(two).clean and "stray" in detect(two).reason

    plain = Image.new("RGB", (64, 64), COLOURS["green"])
    d = detect(plain)
    assert (d.background, d.colour, d.shape, d.clean) == ("green", None, None, False)
