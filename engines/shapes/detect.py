"""Read a shapes-world image back: its background colour, its object's colour and shape, and whether
it is clean (a plain background, one sharp object, nothing else).

Written by the project because no library does this: the off-the-shelf detectors (and CLIP-style
scores) need downloaded weights and do not know the world's 8 colours; OpenCV's contour tools would
be a heavy dependency for a 64-pixel image. This is plain numpy + Pillow and deterministic.

How an image is read (at WORK_SIZE pixels: smaller images are upscaled bilinearly, larger ones
averaged down):
1. Background — the median of the BORDER-pixel-wide frame, named by the nearest of the world's
   colours. The frame is plain when its pixels' spread (RMS distance to the median) is at most
   PLAIN_RMS; otherwise there is no background (None) and nothing more is read.
2. Object — pixels farther than CANDIDATE from the background colour, split into 4-connected
   regions; the largest is the object. Its colour is the median of its pixels, named by the
   nearest colour. Every pixel is then placed on the line from background to object colour
   (t = 0 background, 1 object): the object is the region of t > 0.5, which measures its area
   as drawn even with anti-aliased edges.
3. Shape — from the geometry of that region in its bounding box: the fill ratio (square ≈ 1,
   circle ≈ π/4, triangle ≈ 1/2), a near-square box, and which of the box's corners, edge
   midpoints and centre are covered (a square covers its corners; a circle its edge midpoints but
   not its corners; a triangle, apex up, its bottom corners and top middle but not its top corners).
   When the checks disagree the shape is None.
4. Clean — a plain background, an object of at least MIN_OBJECT of the image, sharp edges (few
   half-way pixels per pixel of outline: a blurred blob has wide edges), at most MAX_STRAY of the
   image in other regions or in colours off the background–object line, and a plain background
   inside the frame too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from engines.shapes import COLOURS, SHAPES, Combo

WORK_SIZE = 64  # images are read at this size
BORDER = 2  # the frame (pixels) whose median is the background
PLAIN_RMS = 10.0  # the frame's RMS distance to its median (0–255 RGB) at most this: a plain background
CANDIDATE = 48.0  # RGB distance from the background that marks a pixel as part of something
MIN_OBJECT = 0.03  # the object covers at least this share of the image (the smallest drawn: ≈ 0.06)
MAX_STRAY = 0.01  # other regions and off-line pixels together: at most this share of the image
MAX_EDGE_WIDTH = 2.0  # half-way pixels (0.15 < t < 0.85) per outline pixel, in the input's pixels: sharp ≈ 1
OFF_LINE = 40.0  # an object pixel this far (RGB) from the background–object line is another colour
INNER_RMS = 12.0  # the background away from the object: RMS distance to its colour at most this

_NAMES = list(COLOURS)
_RGB = np.array([COLOURS[n] for n in _NAMES], dtype=np.float64)  # (8, 3)


@dataclass(frozen=True)
class Detection:
    background: str | None  # the named colour of the plain border; None if the border is not plain
    colour: str | None  # the object's named colour; None if there is no object
    shape: str | None  # "circle", "square" or "triangle"; None if unsure or no object
    clean: bool  # plain background, exactly one sharp object, little else
    border_rms: float  # the frame's RMS distance to its median (0–255)
    object_share: float  # the object's area / the image's
    fill: float  # the object's area / its bounding box's
    edge_width: float  # half-way pixels per outline pixel (sharp ≈ 1)
    stray_share: float  # pixels in other regions or off-colour, / the image's
    reason: str  # why not clean ("" when clean)

    def matches(self, combo: Combo) -> bool:
        return (self.background, self.colour, self.shape) == (combo.background, combo.colour, combo.shape)


def detect(image: Image.Image | np.ndarray) -> Detection:
    """Read one image (PIL, or an (H, W, 3) uint8 array)."""
    a, scale = _as_array(image)  # (S, S, 3) float64, S = WORK_SIZE; input pixels per work pixel
    n_pix = a.shape[0] * a.shape[1]

    # 1. The background: the frame's median, plain or not
    frame = np.concatenate(
        [a[:BORDER].reshape(-1, 3), a[-BORDER:].reshape(-1, 3), a[BORDER:-BORDER, :BORDER].reshape(-1, 3),
         a[BORDER:-BORDER, -BORDER:].reshape(-1, 3)]
    )  # fmt: skip
    bg = np.median(frame, axis=0)  # (3,)
    border_rms = float(np.sqrt(((frame - bg) ** 2).sum(1).mean()))
    if border_rms > PLAIN_RMS:
        return _none(border_rms, f"the border is not plain (RMS {border_rms:.0f} > {PLAIN_RMS:.0f})")
    background = _nearest(bg)

    # 2. The object: the largest region far from the background, then its area along bg → fg
    dist = np.sqrt(((a - bg) ** 2).sum(-1))  # (S, S)
    labels, sizes = _components(dist > CANDIDATE)
    if not sizes or max(sizes) < MIN_OBJECT * n_pix:
        return Detection(background, None, None, False, border_rms, 0.0, 0.0, 0.0,
                         _share(sizes, n_pix), "no object")  # fmt: skip
    biggest = int(np.argmax(sizes)) + 1
    fg = np.median(a[labels == biggest], axis=0)  # (3,)
    colour = _nearest(fg)
    axis = fg - bg
    t = ((a - bg) @ axis) / max(float(axis @ axis), 1e-9)  # (S, S): 0 background … 1 object
    off_line = np.sqrt(np.maximum(((a - bg) ** 2).sum(-1) - (t**2) * float(axis @ axis), 0.0))
    obj_labels, obj_sizes = _components(t > 0.5)
    main = obj_labels == (int(np.argmax(obj_sizes)) + 1)
    area = int(main.sum())

    # 3. The shape, from the region's geometry
    ys, xs = np.nonzero(main)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    h, w = y1 - y0, x1 - x0
    fill = area / float(h * w)
    shape = _classify(main[y0:y1, x0:x1], fill, w / h)

    # 4. Clean: one sharp object, little stray, the inside of the background plain too
    near = _dilate(main, 2)
    stray = (labels > 0) & ~near  # something else, away from the object
    stray |= main & (off_line > OFF_LINE)  # another colour inside the object
    stray_share = float(stray.sum()) / n_pix
    outline = main & ~_erode(main)
    halfway = (t > 0.15) & (t < 0.85) & _dilate(main, 3) & ~_erode(main)
    edge_width = float(halfway.sum()) / max(int(outline.sum()), 1) * scale  # in the input's pixels
    far = ~_dilate(main, 3)
    inner_rms = float(np.sqrt(((a[far] - bg) ** 2).sum(-1).mean())) if far.any() else 0.0
    reason = ""
    if area < MIN_OBJECT * n_pix:
        reason = "the object is too small"
    elif edge_width > MAX_EDGE_WIDTH:
        reason = f"blurred edges ({edge_width:.1f} half-way pixels per outline pixel)"
    elif stray_share > MAX_STRAY:
        reason = f"stray pixels ({stray_share:.1%} of the image)"
    elif inner_rms > INNER_RMS:
        reason = f"the background is not plain inside (RMS {inner_rms:.0f})"
    elif shape is None:
        reason = "no recognisable shape"
    clean = not reason
    if edge_width > MAX_EDGE_WIDTH:
        shape = None  # a blur has no shape to name
    return Detection(background, colour, shape, clean, border_rms, area / n_pix, fill, edge_width,
                     stray_share, reason)  # fmt: skip


def adherence(images: Iterable[Image.Image | np.ndarray], combos: Sequence[Combo]) -> dict[str, float]:
    """Share of images whose background, object colour, shape — and all three — match their combo."""
    hits = {"background": 0, "colour": 0, "shape": 0, "all": 0}
    n = 0
    for image, combo in zip(images, combos, strict=True):
        d = detect(image)
        hits["background"] += d.background == combo.background
        hits["colour"] += d.colour == combo.colour
        hits["shape"] += d.shape == combo.shape
        hits["all"] += d.matches(combo)
        n += 1
    return {k: v / max(n, 1) for k, v in hits.items()}


def clean_share(images: Iterable[Image.Image | np.ndarray]) -> float:
    """Share of images that are clean shapes-world pictures (plain background, one sharp object)."""
    results = [detect(image).clean for image in images]
    return sum(results) / max(len(results), 1)


# -- the pieces ------------------------------------------------------------------------------------
def _as_array(image: Image.Image | np.ndarray) -> tuple[np.ndarray, float]:
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) array, not {image.shape}.")
        image = Image.fromarray(np.asarray(image, dtype=np.uint8))
    image = image.convert("RGB")
    scale = image.size[0] / WORK_SIZE
    if image.size != (WORK_SIZE, WORK_SIZE):
        image = image.resize((WORK_SIZE, WORK_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float64), scale


def _nearest(rgb: np.ndarray) -> str:
    return _NAMES[int(np.argmin(((_RGB - rgb) ** 2).sum(1)))]


def _classify(box: np.ndarray, fill: float, aspect: float) -> str | None:
    """`box`: the object's mask cropped to its bounding box."""
    if not 0.75 <= aspect <= 1.33:  # every shape of the world is drawn in a square box
        return None
    h, w = box.shape
    k = max(1, min(h, w) // 8)  # probe patches of k × k pixels, a bit inside the box

    def covered(fy: float, fx: float) -> float:
        cy, cx = int(round(fy * (h - k))), int(round(fx * (w - k)))
        return float(box[cy : cy + k, cx : cx + k].mean())

    top = (covered(0, 0) + covered(0, 1)) / 2
    bottom = (covered(1, 0) + covered(1, 1)) / 2
    mids = [covered(0, 0.5), covered(0.5, 0), covered(0.5, 1), covered(1, 0.5)]
    centre = covered(0.5, 0.5)
    if centre < 0.9:
        return None
    if fill > 0.88 and top > 0.25 and bottom > 0.25:  # (corners come out rounded when upscaled)
        return "square"
    if 0.66 < fill < 0.86 and top < 0.5 and bottom < 0.5 and min(mids) > 0.5:
        return "circle"
    if 0.38 < fill < 0.66 and top < 0.3 and bottom > 0.5 and max(mids[1], mids[2]) < 0.5 and mids[3] > 0.5:
        return "triangle"
    return None


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """4-connected regions of `mask`: (labels 1…k in order of first pixel, 0 outside), and each
    region's size. Each pixel takes the smallest index among its neighbours', then jumps to its
    label's label, until nothing changes (a few dozen vectorised rounds for a 64 × 64 image)."""
    h, w = mask.shape
    big = h * w
    lab = np.where(mask, np.arange(big).reshape(h, w), big)  # (H, W): own flat index, `big` outside
    while True:
        new = lab.copy()
        np.minimum(new[1:], lab[:-1], out=new[1:])
        np.minimum(new[:-1], lab[1:], out=new[:-1])
        np.minimum(new[:, 1:], lab[:, :-1], out=new[:, 1:])
        np.minimum(new[:, :-1], lab[:, 1:], out=new[:, :-1])
        new = np.where(mask, new, big)
        flat = np.append(new.ravel(), big)
        new = np.where(mask, flat[flat[new]], big)  # pointer jumping: take the label's label
        if np.array_equal(new, lab):
            break
        lab = new
    roots, inverse, counts = np.unique(lab.ravel(), return_inverse=True, return_counts=True)
    inside = roots < big
    labels = np.where(mask.ravel(), inverse + 1, 0).reshape(h, w).astype(np.int32)  # roots sorted: 1…k
    return labels, [int(c) for c in counts[inside]]


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(r):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _erode(mask: np.ndarray) -> np.ndarray:
    return ~_dilate(~mask, 1)


def _share(sizes: list[int], n_pix: int) -> float:
    return float(sum(sizes)) / n_pix


def _none(border_rms: float, reason: str) -> Detection:
    return Detection(None, None, None, False, border_rms, 0.0, 0.0, 0.0, 0.0, reason)


__all__ = ["SHAPES", "Detection", "adherence", "clean_share", "detect"]
