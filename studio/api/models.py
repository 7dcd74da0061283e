"""GET /models."""

from fastapi import APIRouter, Depends

from studio.api.deps import get_studio
from studio.services import Studio

router = APIRouter(tags=["models"])


@router.get("/models")
def list_models(studio: Studio = Depends(get_studio)) -> dict:
    """Every model per kind (hub, local, starter, trained), plus trained text adapters and image LoRAs."""
    return studio.models.list_models()
