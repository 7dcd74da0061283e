"""The AUTOMATIC1111 dialect at /sdapi/v1, so A1111's clients (`webuiapi`, Open WebUI's image
generation, SillyTavern, editor plug-ins) can use the studio's image models. A thin door: it
translates the request, calls the same image service (admission, outputs and ratings included)
and answers in A1111's shapes.

A1111's whole request schema is accepted as its clients send it: what the studio does not do
(hires fix, face restoration, scripts, …) is ignored and named under `ignored` in `info`, never
refused; a size the model cannot draw is fitted into its range, keeping the aspect ratio. LoRAs
are asked for the A1111 way, `<lora:ID_OR_NAME:weight>` in the prompt (ids from /sdapi/v1/loras;
several at once), and `(word:1.3)` weights work too: the image service reads both. Each
image's output id is in `info.output_ids` and the `X-Studio-Output-Id` header, for ratings."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from engines.image.schedulers import DEFAULT as DEFAULT_SAMPLER
from engines.image.schedulers import SCHEDULER_NAMES
from studio.api.deps import require_admin, require_user
from studio.api.openai_compat import OUTPUT_HEADER
from studio.services import Studio
from studio.services.auth import User
from studio.services.errors import Invalid, StudioError
from studio.services.image import ImageGenerateParams

log = logging.getLogger("studio.api.a1111")
# Fields A1111 clients send with neutral values; named as ignored only when they ask for something.
NEUTRAL = {None, False, "", -1, 1.0, "None", "none"}
HANDLED = {"prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height", "sampler_name",
           "sampler_index", "batch_size", "n_iter", "override_settings", "init_images", "denoising_strength",
           "send_images", "save_images", "do_not_save_samples", "do_not_save_grid", "scheduler",
           "override_settings_restore_afterwards", "eta", "s_churn", "s_tmax", "s_tmin", "s_noise",
           "hr_scale", "hr_upscaler", "hr_second_pass_steps", "hr_resize_x", "hr_resize_y", "firstphase_width",
           "firstphase_height", "script_args", "resize_mode", "image_cfg_scale", "include_init_images",
           "inpainting_fill", "inpaint_full_res", "inpaint_full_res_padding", "inpainting_mask_invert",
           "mask_blur", "initial_noise_multiplier", "hr_prompt", "hr_negative_prompt", "hr_checkpoint_name",
           "hr_sampler_name", "hr_scheduler", "subseed", "seed_resize_from_h", "seed_resize_from_w",
           "mask", "enable_hr"}  # mask, enable_hr: inpainting and the hires fix (_edits)


def a1111_error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    if status == 401:
        headers = {"WWW-Authenticate": 'Basic realm="AIGC Studio"', **(headers or {})}
    return JSONResponse({"error": code, "detail": message, "body": "", "errors": ""}, status_code=status,
                        headers=headers)


class GenerationIn(BaseModel):
    """txt2img / img2img as A1111 defines them; everything else a client sends is kept in `extra`."""

    model_config = ConfigDict(extra="allow")
    prompt: str = Field("", max_length=10_000)
    negative_prompt: str = Field("", max_length=10_000)
    seed: int = Field(-1, ge=-1, le=2**32 - 1)
    steps: int | None = Field(None, ge=1, le=150)
    cfg_scale: float | None = Field(None, ge=0, le=30)
    width: int | None = Field(None, ge=8, le=4096)
    height: int | None = Field(None, ge=8, le=4096)
    sampler_name: str | None = Field(None, max_length=100)
    sampler_index: str | None = Field(None, max_length=100)
    batch_size: int = Field(1, ge=1, le=8)
    n_iter: int = Field(1, ge=1, le=8)
    override_settings: dict[str, Any] | None = None
    init_images: list[str] | None = None
    denoising_strength: float | None = Field(None, ge=0, le=1)


class OptionsIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    sd_model_checkpoint: str | None = Field(None, max_length=300)


class PngInfoIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    image: str = Field(..., max_length=70_000_000)


def create_a1111_api(studio: Studio) -> FastAPI:
    api = FastAPI(title="AIGC Studio — AUTOMATIC1111-compatible API", openapi_url="/openapi.json",
                  docs_url=None, redoc_url=None)
    api.state.studio = studio

    @api.exception_handler(StudioError)
    async def _studio_error(request: Request, exc: StudioError):
        return a1111_error(exc.status, exc.code, exc.message, getattr(exc, "headers", None))

    @api.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return a1111_error(422, "invalid_field", f"{where}: {first.get('msg', 'invalid')}.")

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = f"No route {request.method} {request.url.path}." if exc.status_code in (404, 405) else str(exc.detail)
        return a1111_error(exc.status_code, "not_found" if exc.status_code == 404 else "error", message)

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("Unhandled error on %s %s", request.method, request.url.path)
        return a1111_error(500, "internal_error", "Something went wrong inside the studio; see the server log.")

    api.include_router(_router(studio), dependencies=[Depends(require_user)])
    generated = api.openapi

    def openapi() -> dict:  # document the 422 as A1111 answers it, not as FastAPI's default shape
        schema = generated()
        schema.setdefault("components", {}).setdefault("schemas", {})["HTTPValidationError"] = {
            "type": "object", "title": "HTTPValidationError",
            "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}}
        return schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


def _ignored(body: GenerationIn, img2img: bool) -> list[str]:
    names = [k for k, v in (body.model_extra or {}).items()
             if k not in HANDLED and not (v in NEUTRAL if isinstance(v, str | int | float | bool | type(None))
                                          else not v)]
    for k in ("restore_faces", "tiling", "subseed_strength"):  # also A1111's own fields
        if (body.model_extra or {}).get(k) and k not in names:
            names.append(k)
    if (body.override_settings or {}).keys() - {"sd_model_checkpoint"}:
        names.append("override_settings." + ",".join(sorted(body.override_settings.keys() - {"sd_model_checkpoint"})))
    if not img2img and body.init_images:
        names.append("init_images")
    return sorted(set(names))


def _edits(body: GenerationIn, img2img: bool) -> dict:
    """A1111's inpainting (`mask`, `mask_blur`) and hires fix (`enable_hr`, `hr_scale`,
    `hr_second_pass_steps`, `denoising_strength`) as the studio's fields (docs/image-editing.md)."""
    extra = body.model_extra or {}
    if img2img and extra.get("mask"):
        if extra.get("inpainting_mask_invert"):
            raise Invalid("inpainting_mask_invert: not supported; send the mask inverted (white = repaint).")
        return {"mask_image": extra["mask"], "mask_blur": extra.get("mask_blur", 4)}
    if not img2img and extra.get("enable_hr"):
        return {"hires": {"scale": extra.get("hr_scale") or 2.0, "strength": body.denoising_strength or 0.7,
                          "steps": extra.get("hr_second_pass_steps") or None}}
    return {}


def _router(studio: Studio) -> APIRouter:
    r = APIRouter()

    async def generate(body: GenerationIn, user: User, img2img: bool) -> JSONResponse:
        # 1. Translate: what the studio does, and what it names as ignored
        ignored = _ignored(body, img2img)
        prompt = body.prompt  # <lora:ID:weight> tags stay: the image service reads them (engines/image/prompts.py)
        model = (body.override_settings or {}).get("sd_model_checkpoint") or None
        sampler = body.sampler_name or body.sampler_index
        if sampler and sampler not in SCHEDULER_NAMES:
            ignored.append(f"sampler_name '{sampler}' (not available: using the model's default)")
            sampler = None
        width, height = body.width, body.height
        if width and height:
            fitted = await run_in_threadpool(studio.image.fit_size, model, width, height)
            if fitted != (width, height):
                ignored.append(f"size {width}x{height} (this model draws {fitted[0]}x{fitted[1]})")
            width, height = fitted
        init = None
        if img2img:
            if not body.init_images:
                raise Invalid("init_images: img2img needs one base64-encoded image.")
            init = body.init_images[0]
            if len(body.init_images) > 1:
                ignored.append("init_images after the first")
        try:
            params = ImageGenerateParams(
                prompt=prompt, negative_prompt=body.negative_prompt, model=model,
                steps=body.steps, guidance_scale=body.cfg_scale, width=width, height=height, scheduler=sampler,
                num_outputs=body.batch_size * body.n_iter, seed=None if body.seed < 0 else body.seed,
                init_image=init, strength=body.denoising_strength or 0.75 if img2img else 0.75,
                **_edits(body, img2img),
            )
        except ValueError as exc:
            raise Invalid(f"Check the request: {exc}") from exc

        # 2. Generate through the image service (admission, stored outputs)
        result = await run_in_threadpool(studio.image.generate, params, user=user)

        # 3. Answer the A1111 way: base64 PNGs (parameters chunk inside) and `info` as a JSON string
        images, texts = [], []
        from engines.image.pnginfo import read_png_parameters

        for o in result["outputs"]:
            data = studio.outputs.file(o["id"])[0].read_bytes()
            images.append(base64.b64encode(data).decode())
            texts.append(read_png_parameters(data) or "")
        seeds = [o["seed"] for o in result["outputs"]]
        p = result["params"]
        info = {
            "prompt": body.prompt, "all_prompts": [body.prompt] * len(seeds), "negative_prompt": body.negative_prompt,
            "seed": seeds[0] if seeds else None, "all_seeds": seeds, "subseed": -1, "all_subseeds": [-1] * len(seeds),
            "width": p["width"], "height": p["height"], "sampler_name": p["sampler"], "cfg_scale": p["guidance_scale"],
            "steps": p["steps"], "batch_size": body.batch_size, "sd_model_name": result["model"],
            "denoising_strength": params.strength if img2img else None, "infotexts": texts,
            "job_timestamp": datetime.now(UTC).strftime("%Y%m%d%H%M%S"), "output_ids": [o["id"] for o in result["outputs"]],
            "ignored": ignored, "warnings": result["warnings"],
        }
        return JSONResponse(
            {"images": images, "parameters": body.model_dump(exclude={"init_images"}), "info": json.dumps(info)},
            headers={OUTPUT_HEADER: ",".join(info["output_ids"])},
        )

    @r.post("/txt2img")
    async def txt2img(body: GenerationIn, user: User = Depends(require_user)) -> JSONResponse:
        return await generate(body, user, img2img=False)

    @r.post("/img2img")
    async def img2img(body: GenerationIn, user: User = Depends(require_user)) -> JSONResponse:
        return await generate(body, user, img2img=True)

    @r.post("/png-info")
    async def png_info(body: PngInfoIn) -> dict:
        text = body.image.split(",", 1)[1] if body.image.startswith("data:") and "," in body.image else body.image
        try:
            data = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise Invalid("image: send a base64-encoded PNG.") from exc
        found = await run_in_threadpool(studio.image.png_info, data)
        raw = found.pop("raw")
        return {"info": raw or "", "items": {"parameters": raw} if raw else {}, "parameters": found}

    @r.get("/sd-models")
    def sd_models() -> list[dict]:
        return [{"title": m["id"], "model_name": m["id"], "hash": None, "sha256": None, "filename": m["id"],
                 "config": None} for m in studio.models.list_models()["image"]]

    @r.get("/samplers")
    def samplers() -> list[dict]:
        return [{"name": n, "aliases": [], "options": {}} for n in SCHEDULER_NAMES if n != DEFAULT_SAMPLER]

    @r.get("/schedulers")
    def schedulers() -> list[dict]:
        return [{"name": "automatic", "label": "Automatic", "aliases": None, "default_rho": -1,
                 "need_inner_model": False}]

    @r.get("/loras")
    def loras() -> list[dict]:
        return [{"name": a["id"], "alias": a["name"], "path": None, "metadata": {"base_model": a["base_model"]}}
                for a in studio.models.list_models()["image_loras"]]

    @r.get("/options")
    def options() -> dict:
        default = next((m["id"] for m in studio.models.list_models()["image"] if m["default"]), None)
        return {"sd_model_checkpoint": default, "samples_format": "png", "sd_checkpoint_hash": None}

    @r.post("/options")
    def set_options(body: OptionsIn, user: User = Depends(require_admin)) -> dict:
        """Switch the checkpoint image requests get when they name none (admins)."""
        if body.sd_model_checkpoint:
            spec = studio.image.resolve(body.sd_model_checkpoint)[0]
            studio.settings.set_default_model("image", spec.id, user.name)
        return options()

    @r.get("/progress")
    def progress(user: User = Depends(require_user)) -> dict:
        running = studio.image.running.newest(user)
        state = {"skipped": False, "interrupted": False, "job": "", "job_count": 0, "job_timestamp": "0",
                 "job_no": 0, "sampling_step": 0, "sampling_steps": 0}
        if running is None:
            return {"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": None, "textinfo": None}
        state.update(job_count=1, sampling_step=running.step, sampling_steps=running.total,
                     interrupted=running.stop_event.is_set())
        return {"progress": round(running.fraction, 4), "eta_relative": round(running.eta_s, 2), "state": state,
                "current_image": None, "textinfo": None}

    @r.post("/interrupt")
    def interrupt(user: User = Depends(require_user)) -> dict:
        """Stop your generations in flight (an admin stops all); finished images are kept."""
        return {"interrupted": studio.image.running.interrupt(user)}

    @r.post("/skip")
    def skip(user: User = Depends(require_user)) -> dict:
        return {"interrupted": studio.image.running.interrupt(user)}

    @r.get("/scripts")
    def scripts() -> dict:
        return {"txt2img": [], "img2img": []}  # no A1111 scripts here; clients probe for them

    @r.get("/embeddings")
    def embeddings() -> dict:
        return {"loaded": {}, "skipped": {}}

    return r
