"""POST /image/grid: an X/Y/Z plot, each cell a stored image output that can be rated."""

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from studio.api.deps import get_studio, require_user
from studio.services import Studio
from studio.services.auth import User
from studio.services.image_grid import ImageGridParams

router = APIRouter(tags=["generation"])


@router.post("/image/grid")
async def image_grid(body: ImageGridParams, studio: Studio = Depends(get_studio),
                     user: User = Depends(require_user)) -> dict:
    """One image per combination of the axes' values (x fastest), stored like /image/generate's
    outputs; `grid` is a base64 PNG of all cells labelled with the axis values."""
    return await run_in_threadpool(studio.image_grid.generate, body, user=user)
