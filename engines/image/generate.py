"""Stable Diffusion text-to-image and image-to-image with one pipeline loaded once.

Schedulers, LoRAs and the img2img pipeline all share the loaded modules: switching any of them
never reloads weights. Each image of a batch is its own pipeline call with its own seed
(`seed + i`), so any image of a batch can be reproduced alone, pixel for pixel (a batched call
differs from a single one in the last bits on CPU, enough to flip some 8-bit pixels).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.image import edit
from engines.image.prompts import weighted_embeds
from engines.image.schedulers import DEFAULT, build_scheduler, sampler_name

log = logging.getLogger("engines.image")

UNSAFE_CHECKPOINT_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")  # pickles: can run code when loaded

# Linear map from SD 1.x/2.x latents (4 channels) to RGB: a preview for the price of one einsum
# (the "Approx cheap" coefficients of AUTOMATIC1111's web UI).
LATENT_RGB = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)

ProgressFn = Callable[[int, int, Any], None]  # (step, total, preview PIL image or None)


class UnsupportedCheckpoint(ValueError):
    """A checkpoint format the studio refuses to load (pickle-based)."""


@dataclass
class ImageGenerationRequest:
    prompt: str
    negative_prompt: str = ""
    steps: int = 4  # denoising steps (img2img runs about steps × strength of them)
    guidance_scale: float = 5.0  # classifier-free guidance; ≤ 1 turns it (and the negative prompt) off
    width: int = 64  # pixels, a multiple of 8
    height: int = 64
    scheduler: str = DEFAULT  # a name from engines.image.schedulers.SCHEDULERS
    num_outputs: int = 1  # images, seeds seed, seed+1, …
    seed: int | None = None  # None → a fresh seed, reported back
    lora: str | None = None  # name of a LoRA attached with add_lora
    lora_scale: float = 1.0
    loras: list[tuple[str, float]] = field(default_factory=list)  # several LoRAs at once: (name, scale), with `lora`
    init_image: Any = None  # PIL image → img2img, resized to width × height
    strength: float = 0.75  # img2img: how far from the init image (0 keeps it, 1 ignores it)
    mask_image: Any = None  # PIL "L" image, white = repaint → inpainting of init_image (see engines/image/edit.py)
    mask_blur: int = 4  # inpainting: pixels of blur at the mask's edge when pasting the original back
    preview_every: int = 0  # steps between previews; 0 → about four per image


@dataclass
class GeneratedImage:
    seed: int
    image: Any | None  # PIL image; None when the content filter withheld it
    filtered: bool = False  # the safety checker flagged it


@dataclass
class ImageGenerationResult:
    images: list[GeneratedImage]  # finished images only (an image cut short by Stop is dropped)
    seed: int  # of the first image
    sampler: str  # A1111-style name of the scheduler that ran
    steps_run: int  # denoising steps per image
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped: bool = False


def ships_safety_checker(location: str | Path) -> bool | None:
    """Whether a diffusers folder / hub repo ships a safety checker; None when not known yet."""
    path = Path(location)
    if path.suffix.lower() == ".safetensors" or path.suffix.lower() in UNSAFE_CHECKPOINT_SUFFIXES:
        return False  # single-file checkpoints carry no checker
    index: Path | None = path / "model_index.json" if path.is_dir() else None
    if index is None:
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(str(location), "model_index.json")
        except Exception:
            return None
        index = Path(found) if isinstance(found, str) else None
    if index is None or not index.is_file():
        return None
    entry = json.loads(index.read_text(encoding="utf-8")).get("safety_checker")
    return bool(entry and entry[0])


def latents_preview(latents, vae_scale_factor: int):
    """A rough RGB picture of 4-channel latents (1, 4, h, w), upscaled to image size; else None."""
    import torch
    from PIL import Image

    if latents.ndim != 4 or latents.shape[1] != len(LATENT_RGB):
        return None
    coefs = torch.tensor(LATENT_RGB, dtype=torch.float32)
    rgb = torch.einsum("chw,cr->hwr", latents[0].detach().float().cpu(), coefs)  # (h, w, 3)
    pixels = ((rgb + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    h, w = pixels.shape[:2]
    return Image.fromarray(pixels).resize((w * vae_scale_factor, h * vae_scale_factor), Image.NEAREST)


class _StepWatcher:
    """`callback_on_step_end`: reports progress (+ previews) and interrupts the loop on Stop."""

    def __init__(self, index: int, count: int, on_progress: ProgressFn | None,
                 stop_event: threading.Event | None, every: int, vae_scale_factor: int):
        self.index, self.count = index, count
        self.on_progress, self.stop_event = on_progress, stop_event
        self.every, self.vae_scale_factor = every, vae_scale_factor
        self.interrupted = False

    def __call__(self, pipe, i: int, t, tensors: dict) -> dict:
        if self.stop_event is not None and self.stop_event.is_set():
            pipe._interrupt = True  # the pipeline skips the remaining steps
            self.interrupted = True
            return {}
        if self.on_progress is not None:
            total = pipe.num_timesteps
            step = i + 1
            every = self.every or max(1, total // 4)
            preview = None
            if step % every == 0 and step < total:
                preview = latents_preview(tensors["latents"], self.vae_scale_factor)
            self.on_progress(self.index * total + step, self.count * total, preview)
        return {}


def _cast(pipe, safety_checker, dtype) -> None:
    """Convert a loaded fp32 pipeline (and its safety checker) to `dtype`. Stable Diffusion keeps no
    module in fp32, so diffusers' warning about casting after loading does not apply."""
    from diffusers.utils import logging as d_logging

    level = d_logging.get_verbosity()
    d_logging.set_verbosity_error()
    try:
        pipe.to(dtype=dtype)
        if safety_checker is not None:
            safety_checker.to(dtype=dtype)
    finally:
        d_logging.set_verbosity(level)


class ImageEngine:
    """One Stable Diffusion pipeline; LoRAs are attached to it by name.

    `dtype` is a precision choice (`auto`, `fp32`, `bf16`, `fp16`, or a torch dtype name, see
    engines/precision.py); after `load()`, `self.dtype` is what the pipeline runs in ("bfloat16" …)."""

    def __init__(self, location: str | Path, device: str = "cpu", dtype: str = "float32",
                 budget_bytes: int | None = None):
        from engines.precision import normalize

        self.location = str(location)
        self.device = device
        self.precision = normalize(dtype)  # what was asked for: auto | fp32 | bf16 | fp16 (or a dtype name)
        self.dtype = dtype  # what runs (e.g. "bfloat16"): resolved by load(), see engines/precision.py
        self.budget_bytes = budget_bytes  # the memory manager's budget: decides slicing / offload
        self.pipe: Any = None  # StableDiffusionPipeline
        self.safety_checker: Any = None  # run by this engine, per request, when the filter is on
        self.feature_extractor: Any = None
        self.loras: dict[str, str] = {}  # LoRA name → folder
        self.attention_slicing = False
        self.cpu_offload = False
        self._img2img: Any = None
        self._inpaint: Any = None
        self._schedulers: dict[str, Any] = {}  # name → scheduler, built once each
        self._lock = threading.Lock()  # one generation at a time per loaded model

    # -- loading --------------------------------------------------------------------------------
    def load(self) -> ImageEngine:
        import torch
        from diffusers import StableDiffusionPipeline

        if self.pipe is not None:
            return self
        from engines.precision import count_params, dtype_name, load_dtype, resolve_precision

        path = Path(self.location)
        wanted = load_dtype(self.precision, self.device)  # None: `auto` on a CPU, decided by size below
        dtype = wanted or torch.float32
        suffix = path.suffix.lower()
        if suffix in UNSAFE_CHECKPOINT_SUFFIXES:
            raise UnsupportedCheckpoint(
                f"'{path.name}' is a pickle checkpoint ({suffix}), which can run code when loaded; only "
                ".safetensors is accepted. Convert it once where you trust it, e.g. "
                "`StableDiffusionPipeline.from_single_file('model.ckpt').save_pretrained('folder')` for a "
                "diffusers folder, or save the state dict with `safetensors.torch.save_file`."
            )
        if suffix == ".safetensors":  # a single-file checkpoint (A1111 / ComfyUI layout)
            pipe = StableDiffusionPipeline.from_single_file(
                str(path), dtype=dtype, safety_checker=None, requires_safety_checker=False
            )
        else:  # hub id or diffusers folder; the model's own safety checker comes with it
            pipe = StableDiffusionPipeline.from_pretrained(self.location, dtype=dtype, use_safetensors=True)
        self.safety_checker, self.feature_extractor = pipe.safety_checker, pipe.feature_extractor
        pipe.register_modules(safety_checker=None)  # this engine runs it, so the studio setting decides
        if wanted is None:
            num_params = count_params(pipe.unet, pipe.text_encoder, pipe.vae)
            dtype = resolve_precision("auto", self.device, num_params=num_params)
            if dtype != torch.float32:
                _cast(pipe, self.safety_checker, dtype)
        self.dtype = dtype_name(dtype)
        pipe.set_progress_bar_config(disable=True)
        self._schedulers = {DEFAULT: pipe.scheduler}
        self.pipe = pipe
        self._place()
        return self

    def _place(self) -> None:
        """Put the pipeline on its device, trading speed for memory when the budget is tight."""
        size = self.size_bytes()
        tight = self.budget_bytes is not None and self.budget_bytes < 2 * size  # weights + activations
        if self.device == "cuda" and self.budget_bytes is not None and self.budget_bytes < size * 5 // 4:
            self.pipe.enable_model_cpu_offload()  # each module visits the GPU only while it runs
            self.cpu_offload = True
        else:
            self.pipe.to(self.device)
            if self.safety_checker is not None:
                self.safety_checker.to(self.device)
        if tight:
            self.pipe.enable_attention_slicing()
            self.attention_slicing = True

    def size_bytes(self) -> int:
        from engines.memory import module_bytes

        if self.pipe is None:
            return 0
        modules = [m for m in self.pipe.components.values() if hasattr(m, "parameters")]
        if self.safety_checker is not None and hasattr(self.safety_checker, "parameters"):
            modules.append(self.safety_checker)
        return module_bytes(modules)

    def unload(self) -> None:
        with self._lock:
            self.pipe = self._img2img = self._inpaint = self.safety_checker = self.feature_extractor = None
            self._schedulers = {}
            self.loras = {}

    @property
    def has_safety_checker(self) -> bool:
        return self.load().safety_checker is not None

    @property
    def vae_scale_factor(self) -> int:
        return int(self.load().pipe.vae_scale_factor)

    # -- LoRA -----------------------------------------------------------------------------------
    def add_lora(self, name: str, folder: str | Path) -> None:
        """Attach a diffusers-format LoRA (safetensors) under `name`; a no-op when already attached."""
        from diffusers.utils import logging as d_logging

        folder = str(folder)
        self.load()
        with self._lock:
            if self.loras.get(name) == folder:
                return
            if name in self.loras:
                self.pipe.delete_adapters([name])
            level = d_logging.get_verbosity()
            d_logging.set_verbosity_error()  # "no LoRA keys for the text encoder" is expected for UNet LoRAs
            try:
                self.pipe.load_lora_weights(folder, adapter_name=name, use_safetensors=True)
            finally:
                d_logging.set_verbosity(level)
            self.loras[name] = folder

    def _activate_loras(self, active: list[tuple[str, float]]) -> None:
        if not self.loras:
            return
        if not active:
            self.pipe.disable_lora()  # the base model, unchanged
            return
        self.pipe.enable_lora()  # set_adapters alone does not undo disable_lora
        self.pipe.set_adapters([name for name, _ in active], adapter_weights=[float(scale) for _, scale in active])

    # -- schedulers and pipelines ---------------------------------------------------------------
    def _scheduler(self, name: str):
        if name not in self._schedulers:
            self._schedulers[name] = build_scheduler(name, self._schedulers[DEFAULT].config)
        return self._schedulers[name]

    def _pipeline(self, img2img: bool, inpaint: bool = False):
        if inpaint:
            if self._inpaint is None:
                from diffusers import StableDiffusionInpaintPipeline

                # Same modules again; with a 4-channel UNet the pipeline blends latents outside the mask.
                self._inpaint = StableDiffusionInpaintPipeline(**self.pipe.components, requires_safety_checker=False)
                self._inpaint.set_progress_bar_config(disable=True)
            return self._inpaint
        if not img2img:
            return self.pipe
        if self._img2img is None:
            from diffusers import StableDiffusionImg2ImgPipeline

            # Same modules, no reload; the safety checker stays with the engine.
            self._img2img = StableDiffusionImg2ImgPipeline(**self.pipe.components, requires_safety_checker=False)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    def _is_unsafe(self, pixels) -> bool:
        """Run the model's safety checker on one image (numpy (1, H, W, 3) in 0..1)."""
        pil = self.pipe.image_processor.numpy_to_pil(pixels)
        inputs = self.feature_extractor(pil, return_tensors="pt")
        device = getattr(self.safety_checker, "device", "cpu")
        dtype = getattr(self.safety_checker, "dtype", None)
        clip_input = inputs.pixel_values.to(device=device, dtype=dtype)
        _, flags = self.safety_checker(images=pixels.copy(), clip_input=clip_input)
        return bool(flags[0])

    # -- generation -----------------------------------------------------------------------------
    def generate(
        self,
        request: ImageGenerationRequest,
        *,
        content_filter: bool = True,
        on_progress: ProgressFn | None = None,
        stop_event: threading.Event | None = None,
    ) -> ImageGenerationResult:
        import torch
        from PIL import Image

        # 1. Check inputs
        if request.num_outputs < 1:
            raise ValueError("num_outputs must be at least 1")
        if request.width <= 0 or request.height <= 0 or request.width % 8 or request.height % 8:
            raise ValueError(f"width and height must be positive multiples of 8, not {request.width}x{request.height}")
        active = ([(request.lora, request.lora_scale)] if request.lora is not None else []) + list(request.loras)
        for name, _ in active:
            if name not in self.loras:
                raise KeyError(f"LoRA '{name}' is not attached")
        img2img = request.init_image is not None
        if request.mask_image is not None and not img2img:
            raise ValueError("mask_image needs an init_image to inpaint")
        steps_run = min(int(request.steps * request.strength), request.steps) if img2img else request.steps
        if steps_run < 1:
            raise ValueError(f"steps × strength must be at least 1 (steps {request.steps}, strength {request.strength})")
        self.load()
        t0 = time.perf_counter()
        warnings: list[str] = []

        # 2. Prompt length: CLIP reads 77 tokens (75 + start/end); the rest is dropped
        tokenizer = self.pipe.tokenizer
        limit = tokenizer.model_max_length
        for label, text in (("prompt", request.prompt), ("negative prompt", request.negative_prompt)):
            n_tokens = len(tokenizer(text).input_ids)
            if n_tokens > limit:
                warnings.append(f"The {label} has {n_tokens - 2} tokens; the model reads the first {limit - 2}.")
        if request.negative_prompt and request.guidance_scale <= 1:
            warnings.append("The negative prompt has no effect when the guidance scale is 1 or less.")

        # 3. Seeds: image i uses seed + i, so each can be reproduced alone
        seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**31)
        call: dict[str, Any] = dict(
            num_inference_steps=request.steps,
            guidance_scale=request.guidance_scale,
            output_type="np",
        )
        if img2img:
            init = request.init_image.convert("RGB")
            if init.size != (request.width, request.height):
                init = init.resize((request.width, request.height), Image.LANCZOS)
            call.update(image=init, strength=request.strength)
            if request.mask_image is not None:
                mask = edit.fit_mask(request.mask_image, init.size)
                call.update(mask_image=mask, width=request.width, height=request.height)
        else:
            call.update(width=request.width, height=request.height)

        # 4. Denoise, one call per image; Stop ends the current image's loop and skips the rest
        images: list[GeneratedImage] = []
        stopped = False
        with self._lock, torch.inference_mode():
            pipe = self._pipeline(img2img, inpaint=request.mask_image is not None)
            pipe.scheduler = self._scheduler(request.scheduler)
            sampler = sampler_name(pipe.scheduler)
            self._activate_loras(active)
            # (word:1.3) weighting → embeddings through compel; plain prompts stay strings (see prompts.py)
            call.update(weighted_embeds(pipe, request.prompt, request.negative_prompt, request.guidance_scale > 1))
            check = content_filter and self.safety_checker is not None
            for i in range(request.num_outputs):
                if stop_event is not None and stop_event.is_set():
                    stopped = True
                    break
                watcher = _StepWatcher(i, request.num_outputs, on_progress, stop_event, request.preview_every,
                                       int(pipe.vae_scale_factor))
                generator = torch.Generator("cpu").manual_seed(seed + i)  # CPU noise: same image on any device
                pixels = pipe(**call, generator=generator, callback_on_step_end=watcher).images  # (1, H, W, 3)
                if watcher.interrupted:
                    stopped = True
                    break
                if check and self._is_unsafe(pixels):
                    images.append(GeneratedImage(seed + i, None, filtered=True))
                else:
                    image = pipe.image_processor.numpy_to_pil(pixels)[0]
                    if request.mask_image is not None:  # the original's own pixels outside the mask
                        image = edit.paste_back(init, call["mask_image"], image, request.mask_blur)
                    images.append(GeneratedImage(seed + i, image))

        return ImageGenerationResult(
            images=images,
            seed=seed,
            sampler=sampler,
            steps_run=steps_run,
            warnings=warnings,
            elapsed_s=time.perf_counter() - t0,
            stopped=stopped,
        )
