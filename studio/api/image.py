"""Image routes: generate (each image stored as an output that can be rated) and PNG info."""

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from studio.api.deps import get_studio, require_user
from studio.api.multipart import multipart_boundary, read_form
from studio.services import Studio
from studio.services.auth import User
from studio.services.errors import Invalid
from studio.services.image import MAX_PNG_INFO_BYTES, ImageGenerateParams

router = APIRouter(tags=["generation"])

# The form is read by `read_form` (into a scratch folder under the data dir), so it is described here.
_PNG_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary", "description": "a PNG"}},
                }
            }
        },
    }
}


@router.post("/image/generate")
async def generate_image(body: ImageGenerateParams, studio: Studio = Depends(get_studio),
                         user: User = Depends(require_user)) -> dict:
    """Generate `num_outputs` images with seeds `seed, seed+1, …`; empty fields take the model's defaults.

    Each PNG carries its parameters in an AUTOMATIC1111-style `parameters` chunk. Images withheld by
    the content filter are listed under `filtered` (seed only) and never stored.
    """
    return await run_in_threadpool(studio.image.generate, body, user=user)


@router.post("/image/pnginfo", openapi_extra=_PNG_BODY)
async def png_info(request: Request, studio: Studio = Depends(get_studio)) -> dict:
    """The generation parameters of an uploaded PNG: `raw` text (null when it has none) + parsed fields."""
    boundary = multipart_boundary(request, max_bytes=MAX_PNG_INFO_BYTES, expected="the PNG as a 'file' field")
    with studio.scratch.use("pnginfo") as folder:
        form = await read_form(request, boundary, folder, fields=(), max_files=1, max_bytes=MAX_PNG_INFO_BYTES)
        if not form.files:
            raise Invalid("The upload has no 'file' field. Attach the PNG.", code="missing_file")
        data = form.files[0].path.read_bytes()
    return await run_in_threadpool(studio.image.png_info, data)
