"""Admin settings: bearer tokens for scripts, and the precision each engine runs in."""

from typing import Literal

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


Precision = Literal["auto", "fp32", "bf16", "fp16"]
TextPrecision = Literal["auto", "fp32", "bf16", "fp16", "int8"]  # int8: weight-only, CPU, perplexity-guarded


class PrecisionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: TextPrecision | None = Field(None, description="text models (int8: weight-only on the CPU, refused at "
                                       "load when held-out perplexity rises > 3 %); omitted: unchanged")
    image: Precision | None = Field(None, description="image models; omitted: unchanged")
    speech: Precision | None = Field(None, description="speech models; omitted: unchanged")


@router.get("/settings/precision")
def get_precision(studio: Studio = Depends(get_studio)) -> dict:
    """The precision per engine (auto | fp32 | bf16 | fp16; text also int8) and `reduced`: what `auto` runs models of
    20M+ weights in on this device (null: fp32, no fast reduced precision here)."""
    return studio.models.precision()


@router.put("/settings/precision")
def set_precision(body: PrecisionSettings, studio: Studio = Depends(get_studio),
                  user: User = Depends(require_admin)) -> dict:
    """Change the precision of one or more engines (kept across restarts). A loaded model reloads in
    the new precision on its next request."""
    for kind, choice in body.model_dump(exclude_none=True).items():
        studio.settings.set_precision(kind, choice, user.name)
    return studio.models.precision()
