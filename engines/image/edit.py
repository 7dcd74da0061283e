"""Image editing around the engine: inpainting masks, outpainting canvases and the hires fix.

Inpainting runs diffusers' `StableDiffusionInpaintPipeline` on the engine's loaded modules (see
`ImageEngine._pipeline`); a plain 4-channel UNet works too, the pipeline blends the original's
latents back outside the mask at every step. The VAE still changes every pixel a little, so after
decoding the original pixels are pasted back outside the mask (as AUTOMATIC1111 does): beyond
`mask_blur` pixels of soft edge, the unmasked region is the original, pixel for pixel.

Outpainting is inpainting of a larger canvas: the image is padded (edge pixels repeated, a start the
denoiser can blend from) and the mask covers the new border. The hires fix draws the image small,
upscales it with PIL's Lanczos filter and refines it with img2img.
"""

from __future__ import annotations

import dataclasses
from typing import Any

WHITE = 128  # mask pixels at or above this grey level are repainted


def binary_mask(mask) -> Any:
    """A mask as a black/white "L" image (white = repaint); transparency counts as black."""
    from PIL import Image

    if mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
        rgba = mask.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        flat.alpha_composite(rgba)
        mask = flat
    return mask.convert("L").point(lambda v: 255 if v >= WHITE else 0)


def has_white(mask) -> bool:
    """Whether a binary mask repaints anything."""
    return mask.getextrema()[1] >= WHITE


def fit_mask(mask, size: tuple[int, int]) -> Any:
    """The mask at the image's size (nearest neighbour keeps it black and white)."""
    from PIL import Image

    return mask if mask.size == size else mask.resize(size, Image.NEAREST)


def paste_back(init, mask, image, blur: int) -> Any:
    """`image` with the original `init` pasted back outside the mask, the edge blurred by `blur` pixels."""
    from diffusers.image_processor import VaeImageProcessor

    soft = VaeImageProcessor.blur(mask, blur) if blur > 0 else mask
    return VaeImageProcessor().apply_overlay(soft, init.convert("RGB"), image)


@dataclasses.dataclass(frozen=True)
class Border:
    """Pixels added on each side of the canvas for outpainting."""

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0

    @property
    def any(self) -> bool:
        return bool(self.left or self.right or self.top or self.bottom)


def extend_canvas(image, mask, border: Border) -> tuple[Any, Any]:
    """(image, mask) on a canvas grown by `border`: new pixels repeat the nearest edge and are masked
    white; the old area keeps `mask` (black without one: only the border is repainted)."""
    import numpy as np
    from PIL import Image

    pad = ((border.top, border.bottom), (border.left, border.right))
    pixels = np.pad(np.asarray(image.convert("RGB")), (*pad, (0, 0)), mode="edge")  # (H, W, 3)
    inner = np.zeros((image.height, image.width), np.uint8) if mask is None else np.asarray(mask.convert("L"))
    grown = np.pad(inner, pad, mode="constant", constant_values=255)  # (H, W)
    return Image.fromarray(pixels), Image.fromarray(grown)


def upscale(image, width: int, height: int) -> Any:
    """The hires fix's upscaler: PIL Lanczos (no model to download)."""
    from PIL import Image

    return image.resize((width, height), Image.LANCZOS)


def hires_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The refined image's size: `scale` × the base size, down to a multiple of 8."""
    return int(width * scale) // 8 * 8, int(height * scale) // 8 * 8


def hires_fix(engine, request, *, scale: float, strength: float, steps: int, content_filter: bool = True,
              on_progress=None, stop_event=None):
    """Generate `request` at its size, then upscale each image by `scale` and refine it with img2img
    (`steps` × `strength` steps, the image's own seed). Returns the engine's result for the whole run."""
    import time

    t0 = time.perf_counter()
    width, height = hires_size(request.width, request.height, scale)
    base_steps = request.steps if request.init_image is None else int(request.steps * request.strength)
    refine_steps = int(steps * strength)
    n = request.num_outputs
    total = n * (base_steps + refine_steps)

    def first(step, _total, preview):
        if on_progress is not None:
            on_progress(step, total, preview)

    # 1. The small images
    base = engine.generate(request, content_filter=content_filter, on_progress=first, stop_event=stop_event)
    images, warnings = [], list(base.warnings)
    stopped = base.stopped

    # 2. Each one upscaled and refined with img2img, seed for seed
    for i, item in enumerate(base.images):
        if item.image is None:  # withheld by the content filter: stays withheld
            images.append(item)
            continue
        if stop_event is not None and stop_event.is_set():
            stopped = True
            break
        done = n * base_steps + i * refine_steps

        def second(step, _total, preview, done=done):
            if on_progress is not None:
                on_progress(done + step, total, preview)

        refine = dataclasses.replace(
            request, init_image=upscale(item.image, width, height), mask_image=None, strength=strength,
            steps=steps, width=width, height=height, num_outputs=1, seed=item.seed,
        )
        result = engine.generate(refine, content_filter=content_filter, on_progress=second, stop_event=stop_event)
        images.extend(result.images)
        stopped = stopped or result.stopped
    return dataclasses.replace(base, images=images, warnings=warnings, stopped=stopped,
                               elapsed_s=time.perf_counter() - t0)
