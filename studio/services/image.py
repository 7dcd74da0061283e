"""Image generation: resolve model + LoRA, check the form against the model, run the engine, and
store every image (a PNG with its parameters) before returning.

`init_image` (img2img) is either the id of an earlier image output (`out_…`) or a base64-encoded
image (PNG/JPEG/WebP; a `data:image/...;base64,` prefix is allowed). It is resized to the requested
size; without a size, its aspect ratio is kept at the model's default resolution.
Inpainting (`mask_image`), outpainting (`outpaint`) and the hires fix (`hires`) are checked and
prepared in studio/services/image_edit.py.

Content filter: on by default; `StudioConfig.image_content_filter` (switched in Settings) turns it off.
It works where the model ships a safety checker (SD 1.5 does); the starter model and single-file
checkpoints have none, so for them the filter is unavailable and the UI says so. A flagged image
is never stored or shown: the answer lists its seed under `filtered` with a warning.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engines.image.prompts import split_lora_tags
from engines.image.schedulers import DEFAULT as DEFAULT_SCHEDULER
from engines.image.schedulers import SCHEDULER_NAMES
from engines.registry import ModelSpec
from studio.services import image_edit
from studio.services.auth import User
from studio.services.errors import Invalid, NotFound, TooLarge, UnsupportedType
from studio.services.experiments import ExperimentService
from studio.services.image_loras import MAX_LORAS, LoraWeight, resolve_loras
from studio.services.limits import Admission
from studio.services.models import ModelService
from studio.services.outputs import OUTPUT_ID, OutputService
from studio.services.progress import RunningWork
from studio.store import Store
from studio.store import adapters as adapter_rows

MAX_INIT_IMAGE_BYTES = 20 * 1024 * 1024
MAX_INIT_IMAGE_PIXELS = 4096 * 4096
MAX_PNG_INFO_BYTES = 50 * 1024 * 1024

log = logging.getLogger("studio.image")


class ImageGenerateParams(BaseModel):
    """The form of POST /image/generate and of the Image tab. Empty fields take the model's defaults."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(..., max_length=10_000)
    negative_prompt: str = Field("", max_length=10_000)
    model: str | None = None
    lora: str | None = Field(None, description="id of an image LoRA (GET /models → image_loras)")
    lora_scale: float = Field(1.0, ge=0, le=2)
    loras: list[LoraWeight] = Field(
        default_factory=list, max_length=MAX_LORAS,
        description="several LoRAs at once (besides `lora`); also written in the prompt as <lora:ID_OR_NAME:0.8>",
    )
    steps: int | None = Field(None, ge=1, le=150)
    guidance_scale: float | None = Field(None, ge=0, le=30)
    width: int | None = Field(None, ge=8, le=4096, description="pixels, a multiple of 8")
    height: int | None = Field(None, ge=8, le=4096, description="pixels, a multiple of 8")
    scheduler: str | None = Field(None, description=f"one of: {', '.join(SCHEDULER_NAMES)}")
    num_outputs: int = Field(1, ge=1, le=8)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    init_image: str | None = Field(
        None, max_length=MAX_INIT_IMAGE_BYTES * 4 // 3 + 100,
        description="img2img: id of an earlier image output, or a base64-encoded image",
    )
    strength: float = Field(0.75, gt=0, le=1, description="img2img: 0 keeps the init image, 1 ignores it")
    # Editing (studio/services/image_edit.py): inpainting, outpainting, the hires fix
    mask_image: str | None = Field(
        None, max_length=MAX_INIT_IMAGE_BYTES * 4 // 3 + 100,
        description="inpainting: output id or base64 image the size of init_image; white = repaint",
    )
    mask_blur: int = Field(4, ge=0, le=64, description="inpainting: pixels of soft edge where the original is pasted back")
    outpaint: image_edit.Outpaint | None = Field(None, description="outpainting: pixels added on each side of init_image")
    hires: image_edit.HiresFix | None = Field(None, description="hires fix: draw small, upscale (Lanczos), refine")


@dataclass(frozen=True)
class ModelDefaults:
    width: int
    height: int
    steps: int
    guidance_scale: float
    min_size: int  # width/height bounds
    max_size: int
    max_good_steps: int | None = None  # distilled few-step models: more steps do not help


STARTER_DEFAULTS = ModelDefaults(64, 64, 4, 5.0, 32, 256)
TURBO_DEFAULTS = ModelDefaults(512, 512, 1, 0.0, 64, 1024, max_good_steps=4)
SD_DEFAULTS = ModelDefaults(512, 512, 25, 7.0, 64, 1024)


def defaults_for(spec: ModelSpec) -> ModelDefaults:
    if spec.is_starter:  # a trained starter's card says what it was measured with
        measured = (spec.meta.get("card") or {}).get("inference") or {}
        keys = ("width", "height", "steps", "guidance_scale")
        return dataclasses.replace(STARTER_DEFAULTS, **{k: measured[k] for k in keys if k in measured})
    if spec.source == "trained":  # a small SD trained from scratch (image-scratch): its own size, DDIM steps
        size = int(spec.meta.get("resolution") or STARTER_DEFAULTS.width)
        return ModelDefaults(size, size, 25, 4.0, 32, 256)
    if spec.is_distilled:
        return TURBO_DEFAULTS
    return SD_DEFAULTS


class ImageService:
    def __init__(self, models: ModelService, outputs: OutputService, store: Store, admission: Admission,
                 experiments: ExperimentService | None = None):
        self.models = models
        self.outputs = outputs
        self.store = store
        self.admission = admission
        self.experiments = experiments  # a running experiment serves requests that pin no version
        self.running = RunningWork()  # generations in flight: progress and interrupt

    # -- resolving -------------------------------------------------------------------------------
    def lora_row(self, lora_id: str):
        """The image LoRA with this id, else the one with this name."""
        row = adapter_rows.get(self.store, lora_id, "image_lora")
        if row is None:
            named = [r for r in adapter_rows.of_types(self.store, "image_lora") if r["name"] == lora_id]
            row = named[0] if len(named) == 1 else None
        if row is None:
            known = adapter_rows.ids_of_type(self.store, "image_lora")
            raise NotFound(f"No image LoRA '{lora_id}'. Available: {', '.join(known) or 'none yet'}.",
                           code="unknown_lora")
        return row

    def resolve(self, model: str | None, lora: str | None = None):
        """(spec, LoRA row or None) of an image version; 404/422 with the choices or the fix."""
        return self.models.resolve_version("image", model, lora, self.lora_row, "LoRA")

    def resolve_loras(self, params: ImageGenerateParams) -> tuple[ModelSpec, list[tuple[Any, float]], str]:
        """(spec, [(LoRA row, scale)], prompt without its <lora:…> tags); see image_loras.py."""
        return resolve_loras(params, self.resolve, self.lora_row)

    def defaults(self, model: str | None) -> dict:
        """The form values a model starts with (for the UI and for filling empty fields)."""
        spec, _ = self.resolve(model)
        d = defaults_for(spec)
        return {"model": spec.id, "width": d.width, "height": d.height, "steps": d.steps,
                "guidance_scale": d.guidance_scale, "min_size": d.min_size, "max_size": d.max_size,
                "scheduler": DEFAULT_SCHEDULER}

    def fit_size(self, model: str | None, width: int, height: int) -> tuple[int, int]:
        """A size the model can draw, keeping the aspect ratio (clients ask for 1024×1024 whatever the model)."""
        d = defaults_for(self.resolve(model)[0])
        scale = min(1.0, d.max_size / max(width, height, 1))
        scale = max(scale, d.min_size / max(1, min(width, height)))
        w, h = (min(d.max_size, max(d.min_size, int(v * scale) // 8 * 8)) for v in (width, height))
        return w, h

    def warm_default(self) -> None:
        """Load the default image model ahead of the first request when it is a shipped trained starter
        (small and on disk: the first image then pays no import or load). Anything else loads on use."""
        try:
            spec, lora = self.resolve(None)
            if spec.is_starter and not spec.is_random_starter and lora is None:
                from engines.image import ImageGenerationRequest

                # one 2-step image: the first run of each layer sets up its kernels (~0.2 s), not the user's
                d = defaults_for(spec)
                self.engine(spec).generate(ImageGenerationRequest(prompt="warm-up", steps=2, width=d.width,
                                                                  height=d.height, seed=0))  # fmt: skip
        except Exception:  # a warm-up never breaks the studio: the first request loads and reports
            log.debug("image warm-up skipped", exc_info=True)

    def is_loaded(self, model: str | None) -> bool:
        spec, _ = self.resolve(model)
        return self.models.memory.is_loaded(f"image:{spec.id}")

    def engine(self, spec: ModelSpec):
        from engines.image import ImageEngine

        memory = self.models.memory
        device = self.models.device
        precision = self.models.precision_of("image")

        def load():
            location = self.models.registry.location(spec)
            return ImageEngine(location, device=device, dtype=precision, budget_bytes=memory.budget_bytes).load()

        return self.models.loaded_in("image", f"image:{spec.id}", load, size_bytes=lambda e: e.size_bytes(),
                                     unload=lambda e: e.unload())

    @property
    def content_filter(self) -> bool:
        """Read on every request: admins switch it in Settings while the studio runs."""
        return bool(self.models.config.image_content_filter)

    def content_filter_status(self, model: str | None) -> str:
        """One line for the UI: is the content filter on for this model?"""
        from engines.image import ships_safety_checker

        spec, _ = self.resolve(model)
        key = f"image:{spec.id}"
        if self.models.memory.is_loaded(key):
            ships = self.engine(spec).safety_checker is not None
        elif spec.is_starter:
            ships = False
        else:
            ships = ships_safety_checker(spec.location)
        if ships is False:
            return (f"Content filter: unavailable — `{spec.id}` ships no safety checker (starter models and "
                    "single-file checkpoints have none).")
        if not self.content_filter:
            return "Content filter: off (turned off in the studio settings)."
        if ships is None:
            return "Content filter: on where the model ships a safety checker (known once it is loaded)."
        return "Content filter: on — flagged images are withheld, not shown."

    # -- checking the form -----------------------------------------------------------------------
    def _check(self, params: ImageGenerateParams, spec: ModelSpec) -> tuple[dict, list[str]]:
        d = defaults_for(spec)
        scheduler = params.scheduler or DEFAULT_SCHEDULER
        if scheduler not in SCHEDULER_NAMES:
            raise Invalid(f"scheduler: unknown '{scheduler}'. Choose one of: {', '.join(SCHEDULER_NAMES)}.")
        width = params.width or d.width
        height = params.height or d.height
        for name, value in (("width", width), ("height", height)):
            if value % 8:
                raise Invalid(f"{name}: {value} is not a multiple of 8 (try {max(8, value // 8 * 8)}).")
            if not d.min_size <= value <= d.max_size:
                raise Invalid(f"{name}: {value} is outside {d.min_size}..{d.max_size} for '{spec.id}'.")
        steps = params.steps or d.steps
        guidance = d.guidance_scale if params.guidance_scale is None else params.guidance_scale
        warnings = []
        if d.max_good_steps and steps > d.max_good_steps:
            warnings.append(f"'{spec.id}' is distilled for 1–{d.max_good_steps} steps; more steps rarely help.")
        if params.init_image is not None and int(steps * params.strength) < 1:
            raise Invalid(f"strength: {params.strength} × {steps} steps leaves no step to run; raise either.")
        resolved = {"width": width, "height": height, "steps": steps, "guidance_scale": guidance,
                    "scheduler": scheduler}
        image_edit.check(params, resolved, d)
        return resolved, warnings

    def check(self, params: ImageGenerateParams, *, user: User) -> dict:
        """Raise the error `generate` would raise for this form (sizes included), without loading anything."""
        spec, _, _ = self.resolve_loras(params)
        resolved, _ = self._check(params, spec)
        self.admission.check(user, "image", self._sizes(params, resolved))
        return resolved

    def sizes(self, params: ImageGenerateParams) -> dict:
        """What admission would weigh of this form (for a caller that admits several forms at once)."""
        spec, _, _ = self.resolve_loras(params)
        return self._sizes(params, self._check(params, spec)[0])

    @staticmethod
    def _sizes(params: ImageGenerateParams, resolved: dict) -> dict:
        """What admission weighs: the steps, pixels and images that will really run (model defaults included)."""
        return image_edit.sizes(params, {"steps": resolved["steps"], "width": resolved["width"],
                                         "height": resolved["height"], "num_outputs": params.num_outputs})

    def _init_image(self, value: str, resolved: dict, explicit_size: bool, d: ModelDefaults,
                    field: str = "init_image"):
        """Decode `init_image` (output id or base64) into an RGB PIL image; sets the size if not given."""
        from PIL import Image

        if OUTPUT_ID.match(value):
            row = self.outputs.get(value)
            if row["kind"] not in ("image", "gan"):
                raise Invalid(f"{field}: output '{value}' is {row['kind']}, not an image.")
            path, _, _ = self.outputs.file(value)
            data = path.read_bytes()
        else:
            text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
            try:
                data = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise Invalid(f"{field}: give the id of an earlier image output (out_…) or a base64-encoded "
                              "PNG/JPEG.") from exc
        if len(data) > MAX_INIT_IMAGE_BYTES:
            raise TooLarge(f"{field}: keep it under {MAX_INIT_IMAGE_BYTES // 1024**2} MB.")
        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_INIT_IMAGE_PIXELS:
                    raise TooLarge(f"{field}: {im.width}x{im.height} is too large; keep it under 4096x4096.")
                image = im.convert("RGB" if field == "init_image" else "RGBA")  # a mask keeps its transparency
        except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
            raise UnsupportedType(f"{field}: not a readable image (PNG, JPEG or WebP).") from exc
        if not explicit_size:  # keep the init image's aspect ratio at the model's default resolution
            side = max(d.width, d.height)
            scale = side / max(image.width, image.height)
            for name, value in (("width", image.width), ("height", image.height)):
                resolved[name] = min(d.max_size, max(d.min_size, int(value * scale) // 8 * 8))
        return image

    # -- generating ------------------------------------------------------------------------------
    def generate(self, params: ImageGenerateParams, *, user: User,
                 on_progress: Callable[[int, int, Any], None] | None = None,
                 stop_event: threading.Event | None = None) -> dict:
        # 1. Check everything that can be checked before loading a model; a running experiment picks
        #    the version when none is pinned
        assignment = None
        pinned = params.lora is not None or params.loras or split_lora_tags(params.prompt)[1]
        if params.model is None and not pinned and self.experiments is not None:
            assignment = self.experiments.assign("image", user.name)
            if assignment is not None:
                params = params.model_copy(update={"model": assignment.model, "lora": assignment.adapter})
        spec, loras, resolved, warnings, init = self._prepare(params)

        # 2. Admission: the caller's limits on what will really run, then a fair turn
        with self.admission.admit(user, "image", self._sizes(params, resolved)):
            result = self._generate_admitted(params, user, spec, loras, resolved, warnings, init,
                                             on_progress, stop_event)
        if assignment is not None:
            self.experiments.record(assignment, [o["id"] for o in result["outputs"]])
        return result

    def generate_admitted(self, params: ImageGenerateParams, *, user: User, output_params: dict | None = None) -> dict:
        """For callers that already hold admission for this work (the arena admits a pair once).
        `output_params` are stored with each output; with an `arena` key the output is blind until its
        comparison is voted, so its PNG's parameters name no model or LoRA."""
        spec, loras, resolved, warnings, init = self._prepare(params)
        return self._generate_admitted(params, user, spec, loras, resolved, warnings, init, None, None,
                                       output_params=output_params)

    def _prepare(self, params: ImageGenerateParams):
        """(spec, [(LoRA row, scale)], resolved form, warnings, init image): every check that needs no model loaded."""
        spec, loras, _ = self.resolve_loras(params)
        resolved, warnings = self._check(params, spec)
        init = None
        if params.init_image is not None:
            explicit = params.width is not None or params.height is not None
            d = defaults_for(spec)
            image = self._init_image(params.init_image, resolved, explicit, d)
            init = image_edit.canvas(params, image, resolved, explicit, d,
                                     lambda v: self._init_image(v, resolved, True, d, field="mask_image"))
        return spec, loras, resolved, warnings, init

    def _generate_admitted(self, params: ImageGenerateParams, user: User, spec: ModelSpec, loras: list,
                           resolved: dict, warnings: list[str], init, on_progress, stop_event,
                           output_params: dict | None = None) -> dict:
        from engines.image import ImageGenerationRequest
        from engines.image.pnginfo import format_parameters, save_png

        # 3. Load (first use) and attach the LoRAs (once each)
        self.admission.require()
        engine = self.engine(spec)
        active = [(row["id"], float(scale)) for row, scale in loras]
        for row, _ in loras:
            folder = (self.models.config.data_dir / row["path"]).resolve()
            if not folder.is_relative_to(self.models.config.data_dir) or not folder.exists():
                raise NotFound(f"The files of LoRA '{row['id']}' are gone ({row['path']}).")
            engine.add_lora(row["id"], folder)
        lora_id = active[0][0] if active else None  # the output's adapter: the first LoRA
        lora_scale = active[0][1] if active else params.lora_scale

        # 4. Generate
        request = ImageGenerationRequest(
            prompt=split_lora_tags(params.prompt)[0], negative_prompt=params.negative_prompt, steps=resolved["steps"],
            guidance_scale=resolved["guidance_scale"], width=resolved["width"], height=resolved["height"],
            scheduler=resolved["scheduler"], num_outputs=params.num_outputs, seed=params.seed, loras=active,
            init_image=init and init.image, strength=params.strength,
            mask_image=init and init.mask, mask_blur=params.mask_blur,
        )
        stop_event = stop_event or threading.Event()
        with self.running.track(user, resolved["steps"] * params.num_outputs, stop_event) as running:
            def progress(step: int, total: int, preview: Any) -> None:
                running.step, running.total = step, total
                if on_progress is not None:
                    on_progress(step, total, preview)

            result = image_edit.run(engine, request, params, resolved, content_filter=self.content_filter,
                                    on_progress=progress, stop_event=stop_event)
        warnings.extend(result.warnings)

        # 5. Store each image (PNG + parameters chunk) before answering
        stored_params = {
            **params.model_dump(exclude={"prompt", "model", "lora", "loras", "seed", "init_image", "num_outputs",
                                         "mask_image", "mask_blur", "outpaint", "hires"}),
            **resolved, "sampler": result.sampler, "lora_scale": lora_scale, **image_edit.stored(params, init),
        }
        if len(active) > 1:
            stored_params["loras"] = [{"id": i, "scale": s} for i, s in active]
        if init is None:
            stored_params.pop("strength")
        else:
            stored_params["init_image"] = params.init_image if OUTPUT_ID.match(params.init_image) else "upload"
        blind = "arena" in (output_params or {})
        if lora_id is None or blind:  # an arena side's LoRA scale is always 1; its presence would tell
            stored_params.pop("lora_scale")
            stored_params.pop("loras", None)
        stored_params.update(output_params or {})
        outputs, filtered = [], []
        for item in result.images:
            if item.filtered:
                filtered.append({"seed": item.seed})
                warnings.append(f"The image with seed {item.seed} was withheld by the content filter.")
                continue
            text = format_parameters(
                prompt=params.prompt, negative_prompt=params.negative_prompt, steps=resolved["steps"],
                sampler=result.sampler, cfg_scale=resolved["guidance_scale"], seed=item.seed,
                width=resolved["width"], height=resolved["height"], model="" if blind else spec.id,  # names none
                lora=None if blind else lora_id, lora_scale=lora_scale, denoising_strength=params.strength if init is not None else None,
                extra={**({"Loras": " ".join(f"{i}:{s}" for i, s in active)} if len(active) > 1 and not blind else {}),
                       **(image_edit.png_fields(params, init, resolved) or {})} or None,
            )
            output_id, path = self.outputs.new_file_path(".png")
            save_png(item.image, path, text)
            try:
                row = self.outputs.record(kind="image", prompt=params.prompt, params=stored_params, model=spec.id,
                                          adapter=lora_id, seed=item.seed, user=user.name, file=path,
                                          output_id=output_id)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            outputs.append({"id": row["id"], "url": row["url"], "seed": item.seed})
        if result.stopped:
            warnings.append(f"Stopped: {len(result.images)} of {params.num_outputs} image(s) finished.")
        return {
            "outputs": outputs,
            "model": spec.id,
            "lora": lora_id,
            "elapsed_s": round(result.elapsed_s, 4),
            "warnings": warnings,
            "filtered": filtered,
            "stopped": result.stopped,
            "starter": spec.is_starter,
            "random_weights": spec.is_random_starter,  # a starter that makes noise until trained
            "params": {**resolved, "sampler": result.sampler},
        }

    # -- PNG info --------------------------------------------------------------------------------
    def png_info(self, data: bytes) -> dict:
        """The generation parameters in a PNG's `parameters` chunk, parsed; `raw` is the text (or None)."""
        from engines.image.pnginfo import PNG_SIGNATURE, parse, read_png_parameters

        if len(data) > MAX_PNG_INFO_BYTES:
            raise TooLarge(f"Keep the PNG under {MAX_PNG_INFO_BYTES // 1024**2} MB.")
        if not data.startswith(PNG_SIGNATURE):
            raise UnsupportedType("PNG info reads PNG files only (generation parameters live in a PNG text chunk).")
        try:
            text = read_png_parameters(data)
        except ValueError as exc:
            raise UnsupportedType(f"Could not read this PNG: {exc}") from exc
        if text is None:
            return {"raw": None}
        return {"raw": text, **parse(text)}

    def recent(self, limit: int = 24, user: User | None = None, search: str | None = None) -> list[dict]:
        """Earlier image outputs, newest first, with the absolute path of each file: a person's own
        (everyone's for an admin), those whose prompt contains `search` when given."""
        owner = None if user is None or user.is_admin else user.name
        rows = self.outputs.recent("image", limit=limit, user=None if user is None else user.name, owner=owner,
                                   search=(search or "").strip()[:200] or None)
        out = []
        for row in rows:
            try:
                path, _, _ = self.outputs.file(row["id"])
            except NotFound:
                continue
            out.append({**row, "path": str(path)})
        return out
