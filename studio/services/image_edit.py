"""The editing part of POST /image/generate: inpainting (`mask_image`), outpainting (`outpaint`) and
the hires fix (`hires`). `ImageService` calls these; the work itself is in engines/image/edit.py.

- `mask_image` (with `init_image`): an output id or base64 image the size of the init image, white
  (grey ≥ 128) = repaint, black or transparent = keep. A mask of another size is refused (422),
  never stretched: a stretched mask repaints somewhere the user did not paint.
- `outpaint` `{left, right, top, bottom}` (with `init_image`): pixels added on each side; the new
  border is painted, the old image kept (or, with a mask too, the mask's white part of it).
- `hires` `{scale, strength, steps}` (txt2img or img2img, not with a mask): draw at width × height,
  upscale by `scale` with PIL's Lanczos filter, refine with img2img at `strength`.
Without `width`/`height`, an inpainting or outpainting canvas keeps its own size when the model can
draw it (multiples of 8 within the model's range), so the kept pixels are the uploaded ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from studio.services.errors import Invalid


class Outpaint(BaseModel):
    """Pixels to add on each side of `init_image` (outpainting)."""

    model_config = ConfigDict(extra="forbid")
    left: int = Field(0, ge=0, le=1024)
    right: int = Field(0, ge=0, le=1024)
    top: int = Field(0, ge=0, le=1024)
    bottom: int = Field(0, ge=0, le=1024)


class HiresFix(BaseModel):
    """Draw small, upscale (Lanczos), refine with img2img."""

    model_config = ConfigDict(extra="forbid")
    scale: float = Field(2.0, gt=1, le=4, description="final size = scale × width/height (down to a multiple of 8)")
    strength: float = Field(0.5, gt=0, le=1, description="img2img strength of the refining pass")
    steps: int | None = Field(None, ge=1, le=150, description="refining steps (empty: the same as `steps`)")


@dataclasses.dataclass
class Canvas:
    """What the engine starts from: the init image and, for inpainting/outpainting, its mask."""

    image: Any  # PIL RGB
    mask: Any = None  # PIL "L", white = repaint; None → plain img2img


def check(params, resolved: dict, d) -> None:
    """The editing fields against each other and the model (no image decoded yet)."""
    editing = params.mask_image is not None or params.outpaint is not None
    if editing and params.init_image is None:
        field = "mask_image" if params.mask_image is not None else "outpaint"
        raise Invalid(f"{field}: give the image to edit as init_image too.")
    if params.hires is None:
        return
    if editing:
        raise Invalid("hires: the hires fix works with txt2img and img2img; inpaint at the final size instead "
                      "(leave out hires, or mask_image/outpaint).")
    steps = params.hires.steps or resolved["steps"]
    if int(steps * params.hires.strength) < 1:
        raise Invalid(f"hires.strength: {params.hires.strength} × {steps} steps leaves no step to run; raise either.")
    width, height = hires_size(resolved, params.hires)
    if max(width, height) > d.max_size:
        raise Invalid(f"hires.scale: {width}x{height} is larger than {d.max_size} for this model; lower the scale "
                      "or the size.")


def hires_size(resolved: dict, hires: HiresFix) -> tuple[int, int]:
    from engines.image.edit import hires_size as size

    return size(resolved["width"], resolved["height"], hires.scale)


def sizes(params, sizes: dict) -> dict:
    """What admission weighs, with the hires pass: the final size and both passes' steps."""
    if params.hires is None:
        return sizes
    width, height = hires_size(sizes, params.hires)
    return {**sizes, "width": width, "height": height, "steps": sizes["steps"] + (params.hires.steps or sizes["steps"])}


def canvas(params, init, resolved: dict, explicit_size: bool, d, decode: Callable[[str], Any]) -> Canvas:
    """The init image with its mask (decoded, checked) and the outpainting border added; sets the size."""
    from engines.image import edit

    mask = None
    if params.mask_image is not None:
        mask = edit.binary_mask(decode(params.mask_image))
        if mask.size != init.size:
            raise Invalid(f"mask_image: it is {mask.width}x{mask.height} but init_image is {init.width}x{init.height}; "
                          "give a mask of the same size.")
        if not edit.has_white(mask):
            raise Invalid("mask_image: nothing to repaint — the mask has no white pixels. Paint the area to "
                          "regenerate white (black or transparent is kept).")
    border = edit.Border(**params.outpaint.model_dump()) if params.outpaint is not None else edit.Border()
    if border.any:
        init, mask = edit.extend_canvas(init, mask, border)
    if mask is not None and not explicit_size:
        w, h = init.size
        if w % 8 == 0 and h % 8 == 0 and d.min_size <= min(w, h) and max(w, h) <= d.max_size:
            resolved.update(width=w, height=h)  # the canvas as it is: the kept pixels are the uploaded ones
        else:
            scale = max(d.width, d.height) / max(w, h)
            resolved.update({k: min(d.max_size, max(d.min_size, int(v * scale) // 8 * 8))
                             for k, v in (("width", w), ("height", h))})
    return Canvas(init, mask)


def stored(params, canvas: Canvas | None) -> dict:
    """The editing fields as stored with each output (what the output was made with)."""
    from studio.services.outputs import OUTPUT_ID

    out: dict[str, Any] = {}
    if canvas is not None and canvas.mask is not None:
        out["mode"] = "outpaint" if params.outpaint is not None else "inpaint"
        if params.mask_image is not None:
            out["mask_image"] = params.mask_image if OUTPUT_ID.match(params.mask_image) else "upload"
        if params.outpaint is not None:
            out["outpaint"] = params.outpaint.model_dump()
        out["mask_blur"] = params.mask_blur
    if params.hires is not None:
        out["hires"] = {**params.hires.model_dump(), "upscaler": "Lanczos"}
    return out


def png_fields(params, canvas: Canvas | None, resolved: dict) -> dict:
    """Extra `Key: value` pairs for the PNG's parameters (A1111's names where it has them)."""
    out: dict[str, Any] = {}
    if canvas is not None and canvas.mask is not None:
        out["Mask blur"] = params.mask_blur
        out["Inpaint"] = "outpaint" if params.outpaint is not None else "mask"
        if params.outpaint is not None:
            o = params.outpaint
            out["Outpaint"] = f"left {o.left} right {o.right} top {o.top} bottom {o.bottom}"
    if params.hires is not None:
        out["Hires upscale"] = params.hires.scale
        out["Hires steps"] = params.hires.steps or resolved["steps"]
        out["Hires denoising strength"] = params.hires.strength
        out["Hires upscaler"] = "Lanczos"
    return out


def run(engine, request, params, resolved: dict, **options):
    """The engine's generation, through the hires fix when asked."""
    from engines.image.edit import hires_fix

    if params.hires is None:
        return engine.generate(request, **options)
    return hires_fix(engine, request, scale=params.hires.scale, strength=params.hires.strength,
                     steps=params.hires.steps or resolved["steps"], **options)
