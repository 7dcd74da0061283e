"""Image augmentation: the size training gets, repeatability with a seed, and that each transform acts."""

import numpy as np
import pytest
from PIL import Image

from engines.augment import AUGMENTATIONS, ImageAugmenter, to_tensor_normalised, validate_augment


def gradient(w: int = 96, h: int = 64) -> Image.Image:
    """Left dark, right bright, with a vertical colour ramp: every flip or crop shows in the pixels."""
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]  # (1, W, 1)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    rgb = np.concatenate(
        [np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)), np.full((h, w, 1), 128, np.float32)],
        axis=2,
    )
    return Image.fromarray(rgb.astype(np.uint8))


@pytest.mark.parametrize("augment", [[], ["flip"], ["rotate"], ["crop"], ["color"], list(AUGMENTATIONS)])
@pytest.mark.parametrize("size", [(96, 64), (40, 120), (32, 32)])
def test_output_is_a_square_rgb_image_of_the_resolution(augment, size):
    out = ImageAugmenter(augment, resolution=48, seed=1)(gradient(*size))
    assert out.size == (48, 48) and out.mode == "RGB"


def test_same_seed_same_images_other_seed_other_images():
    img = gradient()
    a = ImageAugmenter(list(AUGMENTATIONS), 32, seed=7)
    b = ImageAugmenter(list(AUGMENTATIONS), 32, seed=7)
    c = ImageAugmenter(list(AUGMENTATIONS), 32, seed=8)
    seq_a = [np.asarray(a(img)) for _ in range(5)]
    seq_b = [np.asarray(b(img)) for _ in range(5)]
    seq_c = [np.asarray(c(img)) for _ in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(seq_a, seq_b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(seq_a, seq_c, strict=True))


def test_no_augmentation_is_a_centre_crop():
    out = np.asarray(ImageAugmenter([], 64, seed=0)(gradient(96, 64)), dtype=np.int16)
    expected = np.asarray(gradient(96, 64).crop((16, 0, 80, 64)), dtype=np.int16)
    assert np.abs(out - expected).max() <= 1


def test_flip_mirrors_about_half_of_the_images():
    img = gradient(64, 64)
    plain = np.asarray(ImageAugmenter([], 64)(img))
    mirrored = np.asarray(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    aug = ImageAugmenter(["flip"], 64, seed=0)
    outcomes = []
    for _ in range(40):
        out = np.asarray(aug(img))
        assert np.array_equal(out, plain) or np.array_equal(out, mirrored)
        outcomes.append(np.array_equal(out, mirrored))
    assert 8 <= sum(outcomes) <= 32


def test_rotate_changes_pixels_but_fills_corners_without_black():
    img = Image.new("RGB", (64, 64), (200, 180, 160))
    outs = [ImageAugmenter(["rotate"], 64, seed=s)(gradient(64, 64)) for s in range(5)]
    assert any(not np.array_equal(np.asarray(o), np.asarray(gradient(64, 64))) for o in outs)
    flat = np.asarray(ImageAugmenter(["rotate"], 64, seed=3)(img))
    assert flat.min() >= 150  # reflection keeps a uniform image uniform: no black wedges


def test_color_jitter_changes_colours_within_bounds():
    img = Image.new("RGB", (32, 32), (120, 100, 80))
    means = [np.asarray(ImageAugmenter(["color"], 32, seed=s)(img)).mean() for s in range(10)]
    base = np.asarray(img).mean()
    assert max(abs(m - base) for m in means) > 1
    assert all(abs(m - base) < base * 0.5 for m in means)


def test_crop_moves_even_a_square_image():
    img = gradient(64, 64)
    outs = {np.asarray(ImageAugmenter(["crop"], 64, seed=s)(img)).tobytes() for s in range(6)}
    assert len(outs) > 1


def test_validate_augment_orders_and_rejects_unknown_names():
    assert validate_augment(["color", "flip", "flip"]) == ["flip", "color"]
    assert validate_augment(None) == []
    with pytest.raises(ValueError, match="'blur'.*flip, rotate, crop, color"):
        validate_augment(["flip", "blur"])
    with pytest.raises(ValueError, match="list"):
        validate_augment("flip")
    with pytest.raises(ValueError, match="'sharpen'"):
        ImageAugmenter(["sharpen"], 32)


def test_to_tensor_normalised_is_chw_in_minus_one_to_one():
    img = Image.new("RGB", (5, 3), (0, 255, 128))
    t = to_tensor_normalised(img)
    assert tuple(t.shape) == (3, 3, 5)
    assert float(t[0].min()) == -1.0 and float(t[1].max()) == 1.0
    assert abs(float(t[2, 0, 0]) - (128 / 127.5 - 1)) < 1e-6
