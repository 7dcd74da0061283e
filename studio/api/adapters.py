"""REST routes for adapters and trained models: thin over `studio.adapters` (AdapterService).

The import route reads its multipart body as it arrives, straight into a private folder under the
data dir (never the system temp folder), and refuses a body over the upload limit as soon as it
passes it.
"""

from __future__ import annotations

import shutil
from functools import partial
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from studio.api.deps import get_studio, require_admin, require_user
from studio.api.multipart import multipart_boundary, read_form
from studio.services import Studio
from studio.services.adapter_mix import MIX_TYPES
from studio.services.auth import User

router = APIRouter(tags=["adapters"])

IMPORT_FIELDS = ("base_model", "name")
MAX_FILES = 32  # an adapter folder is three files; a zip counts as one


class AdapterRename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., max_length=200)


class MixSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., max_length=64)
    weight: float | None = Field(None, description="default 1; or give all weights as `weights`")


class AdapterMix(BaseModel):
    """Combine ≥ 2 text adapters of one base model into a new adapter with one of peft's combination types.
    Types, density and sign method are checked by the service, whose 422 says what to change."""

    model_config = ConfigDict(extra="forbid")
    adapters: list[MixSource | str] = Field(..., min_length=2, max_length=8, description="{id, weight?} or ids")
    weights: list[float] | None = Field(None, max_length=8, description="one per adapter, in order")
    combination_type: str = Field(
        "auto", max_length=40,
        description="auto (linear when ranks match and weights are positive, else cat), " + ", ".join(MIX_TYPES),
    )  # fmt: skip
    density: float | None = Field(
        None, description="ties/dare/magnitude_prune types: share of each adapter's weights kept, 0 < density ≤ 1"
    )
    majority_sign_method: str | None = Field(
        None, max_length=20, description="ties, ties_svd, dare_ties, dare_ties_svd: total (default) or frequency"
    )
    eval_dataset_id: str | None = Field(
        None, max_length=64, description="a text dataset: the mix's held-out perplexity beside its parents'"
    )
    name: str | None = Field(None, max_length=200)


@router.get("/adapters")
def list_adapters(studio: Studio = Depends(get_studio), user: User = Depends(require_user)) -> dict:
    """Text adapters, trained text models and image LoRAs, newest first."""
    return {"adapters": studio.adapters.list()}


@router.get("/adapters/{adapter_id}")
def get_adapter(
    adapter_id: str, studio: Studio = Depends(get_studio), user: User = Depends(require_user)
) -> dict:
    return studio.adapters.get(adapter_id)


@router.patch("/adapters/{adapter_id}")
def rename_adapter(
    adapter_id: str,
    body: AdapterRename,
    studio: Studio = Depends(get_studio),
    user: User = Depends(require_admin),
) -> dict:
    """Change the display name (ids and folders never change)."""
    return studio.adapters.rename(adapter_id, body.name, user=user)


@router.delete("/adapters/{adapter_id}")
def delete_adapter(
    adapter_id: str, studio: Studio = Depends(get_studio), user: User = Depends(require_admin)
) -> dict:
    """Delete the row and its files; 409 while a queued or running job uses it."""
    studio.adapters.delete(adapter_id, user=user)
    return {"deleted": adapter_id}


@router.get(
    "/adapters/{adapter_id}/export",
    response_class=FileResponse,
    responses={200: {"description": "a zip of the folder", "content": {"application/zip": {}}}},
)
async def export_adapter(
    adapter_id: str,
    request: Request,
    merged: bool = Query(
        False, description="text adapters: fold into the base and export a full model (admin)"
    ),
    precision: Literal["fp32", "bf16", "fp16"] = Query("fp32", description="with merged=true: the weights' precision"),
    studio: Studio = Depends(get_studio),
    user: User = Depends(require_user),
) -> FileResponse:
    """A zip of the adapter's folder (PEFT format), or with `merged=true` of the merged full model."""
    if merged:
        admin = require_admin(request)
        path = await run_in_threadpool(studio.adapters.merge_export, adapter_id, admin, precision)
    else:
        path = await run_in_threadpool(studio.adapters.export, adapter_id)
    return FileResponse(
        path, media_type="application/zip", filename=path.name,
        background=BackgroundTask(shutil.rmtree, path.parent, ignore_errors=True),
    )  # fmt: skip


@router.post("/adapters/mix", status_code=201)
async def mix_adapters(
    body: AdapterMix, studio: Studio = Depends(get_studio), user: User = Depends(require_admin)
) -> dict:
    """201 with the new adapter, and `perplexity` {merged, parents: {id: …}, dataset_id} when a dataset is given."""
    sources = [s if isinstance(s, str) else s.model_dump(exclude_none=True) for s in body.adapters]
    options = body.model_dump(include={"weights", "combination_type", "density", "majority_sign_method",
                                       "eval_dataset_id"})  # fmt: skip
    return await run_in_threadpool(partial(studio.adapters.mix, sources, body.name, user, **options))


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "name"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "a .zip of a PEFT adapter folder, or its adapter_config.json "
                            "and adapter_model.safetensors",
                        },
                        "base_model": {"type": "string", "description": "the text model it was trained on"},
                        "name": {"type": "string", "maxLength": 100},
                    },
                }
            }
        },
    }
}


@router.post(
    "/adapters/import", status_code=201, openapi_extra=_IMPORT_BODY, dependencies=[Depends(require_admin)]
)
async def import_adapter(request: Request, studio: Studio = Depends(get_studio)) -> dict:
    """Import a LoRA adapter (safetensors only), checked against the base model: 422 if it does not fit."""
    limits = studio.config.uploads
    boundary = multipart_boundary(request, max_bytes=limits.max_total_bytes,
                                  expected="'file', 'base_model' and 'name'")
    folder = studio.scratch.folder("upload")
    try:
        form = await read_form(request, boundary, folder, fields=IMPORT_FIELDS, max_files=MAX_FILES,
                               max_bytes=limits.max_total_bytes)
        files, fields = form.files, form.fields
        user = request.state.user
        return await run_in_threadpool(
            studio.adapters.import_adapter,
            files,
            fields.get("base_model") or None,
            fields.get("name", ""),
            user,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
