"""API tokens: admins create and revoke bearer tokens for scripts."""

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from studio.api.deps import get_studio, require_admin
from studio.services import Studio
from studio.services.auth import User

router = APIRouter(tags=["admin"])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field("", max_length=100, description="what the token is for")


@router.post("/tokens", status_code=201)
def create_token(body: TokenRequest, studio: Studio = Depends(get_studio), user: User = Depends(require_admin)) -> dict:
    """A new bearer token for the calling admin. The token is shown once; only its hash is kept."""
    return studio.auth.create_token(user, body.label)


@router.get("/tokens")
def list_tokens(studio: Studio = Depends(get_studio), user: User = Depends(require_admin)) -> dict:
    return {"tokens": studio.auth.list_tokens()}


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: str, studio: Studio = Depends(get_studio), user: User = Depends(require_admin)) -> dict:
    studio.auth.revoke_token(token_id)
    return {"revoked": token_id}
