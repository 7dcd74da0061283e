"""Image generation: `engines.image.ImageEngine` against a plain diffusers `StableDiffusionPipeline`
call on the starter Stable Diffusion, same scheduler, steps, guidance, size and seed."""

from __future__ import annotations

from bench import fixtures
from bench.core import Context, Figure, device_sync, interleaved, median, paired_ratio, timed

PROMPT = "a red fox in the snow, watercolor"
STEPS, GUIDANCE, SIZE, SEED = 4, 5.0, 64, 11


def run(ctx: Context, names: set[str]) -> list[Figure]:
    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline

    from engines.image import ImageEngine, ImageGenerationRequest

    folder = fixtures.starter(ctx, "image")
    studio = ImageEngine(folder, device=ctx.device).load()
    plain = StableDiffusionPipeline.from_pretrained(folder, dtype=torch.float32, use_safetensors=True).to(ctx.device)
    plain.set_progress_bar_config(disable=True)
    sync = device_sync(ctx.device)

    def studio_image():
        request = ImageGenerationRequest(prompt=PROMPT, steps=STEPS, guidance_scale=GUIDANCE, width=SIZE,
                                         height=SIZE, seed=SEED)
        return studio.generate(request).images[0].image

    def plain_image():
        generator = torch.Generator("cpu").manual_seed(SEED)
        return plain(PROMPT, num_inference_steps=STEPS, guidance_scale=GUIDANCE, width=SIZE, height=SIZE,
                     generator=generator).images[0]

    same = bool(np.array_equal(np.asarray(studio_image()), np.asarray(plain_image())))  # also the warm-up
    runs = interleaved({"studio": lambda: timed(studio_image, sync)[0], "plain": lambda: timed(plain_image, sync)[0]},
                       4 * ctx.reps, 0)
    s, p = median(runs["studio"]), median(runs["plain"])
    return [Figure("image.generate", s, "s/image", p, paired_ratio(runs["studio"], runs["plain"], higher_is_better=False),
                   f"starter SD {SIZE}×{SIZE}, {STEPS} steps, {studio.pipe.scheduler.__class__.__name__}, fp32",
                   {"same_pixels_as_plain": same, "runs": runs})]
