"""REST routes for one-file Stable Diffusion exports: thin over `studio.image_exports`. An export is
started like any job (POST /api/v1/jobs with kind `image-export`); these list and download the results."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from studio.api.deps import get_studio
from studio.services import Studio

router = APIRouter(tags=["models"])


@router.get("/image-exports")
def list_image_exports(studio: Studio = Depends(get_studio)) -> list[dict]:
    """The completed `image-export` jobs, newest first, with their metrics and download path."""
    return studio.image_exports.list()


@router.get(
    "/image-exports/{job_id}/file",
    response_class=FileResponse,
    responses={200: {"description": "the .safetensors checkpoint", "content": {"application/octet-stream": {}}}},
)
def image_export_file(job_id: str, studio: Studio = Depends(get_studio)) -> FileResponse:
    """The export's single original-layout .safetensors file (for AUTOMATIC1111 / Forge / ComfyUI)."""
    path = studio.image_exports.file(job_id)
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)
