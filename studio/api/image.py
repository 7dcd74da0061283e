"""Image routes: generate (each image stored as an output that can be rated) and PNG info."""

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.concurrency import run_in_threadpool

from studio.api.deps import get_studio, require_user
from studio.services import Studio
from studio.services.auth import User
from studio.services.image import MAX_PNG_INFO_BYTES, ImageGenerateParams

router = APIRouter(tags=["generation"])


@router.post("/image/generate")
async def generate_image(body: ImageGenerateParams, studio: Studio = Depends(get_studio),
                         user: User = Depends(require_user)) -> dict:
    """Generate `num_outputs` images with seeds `seed, seed+1, …`; empty fields take the model's defaults.

    Each PNG carries its parameters in an AUTOMATIC1111-style `parameters` chunk. Images withheld by
    the content filter are listed under `filtered` (seed only) and never stored.
    """
    return await run_in_threadpool(studio.image.generate, body, user=user)


@router.post("/image/pnginfo")
async def png_info(file: UploadFile = File(..., description="a PNG"), studio: Studio = Depends(get_studio)) -> dict:
    """The generation parameters of an uploaded PNG: `raw` text (null when it has none) + parsed fields."""
    data = await file.read(MAX_PNG_INFO_BYTES + 1)
    return await run_in_threadpool(studio.image.png_info, data)
