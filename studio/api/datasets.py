"""REST routes for datasets. Thin: the upload is streamed to disk here, everything else is the service's.

The upload route parses multipart/form-data itself, as the bytes arrive, instead of letting the
framework spool the whole body to the system temp folder first: files land only in the data
dir, a body over the limit is refused as soon as it passes the limit (or before a byte is read,
when Content-Length says so), and the admin check runs before any of it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from studio.api.deps import get_studio, require_admin, require_user
from studio.api.multipart import multipart_boundary, read_form
from studio.services import Studio
from studio.services.errors import Invalid

router = APIRouter(tags=["datasets"])

FORM_FIELDS = ("kind", "name", "dedupe", "min_chars")
MEDIA_TYPES = {".png": "image/png", ".wav": "audio/wav"}


class DatasetSummary(BaseModel):
    id: str
    name: str
    kind: str
    num_items: int
    stats: dict[str, Any]
    warnings: list[str]
    created_at: str


class DatasetDetail(DatasetSummary):
    preview: list[dict[str, Any]]


class DatasetList(BaseModel):
    datasets: list[DatasetSummary]


class Deleted(BaseModel):
    deleted: str


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "kind", "name"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "one or more files (text, images, or a .zip)",
                        },
                        "kind": {"type": "string", "enum": ["text", "image", "audio"]},
                        "name": {"type": "string", "maxLength": 100},
                        "dedupe": {
                            "type": "boolean",
                            "default": False,
                            "description": "text: drop exact duplicate rows",
                        },
                        "min_chars": {
                            "type": "integer",
                            "minimum": 0,
                            "default": 0,
                            "description": "text: drop rows shorter than this",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/datasets",
    status_code=201,
    response_model=DatasetSummary,
    openapi_extra=_UPLOAD_BODY,
    summary="Upload a dataset",
    dependencies=[Depends(require_admin)],
)
async def upload_dataset(request: Request, studio: Studio = Depends(get_studio)) -> dict:
    limits = studio.config.uploads
    # 1. Refuse what is plainly wrong before reading the body
    boundary = multipart_boundary(request, max_bytes=limits.max_total_bytes,
                                  expected="one or more 'file' fields, 'kind' and 'name'")

    # 2. Stream the files into a private scratch folder, removed however the request ends
    with studio.scratch.use("api-upload") as folder:
        form = await read_form(request, boundary, folder, fields=FORM_FIELDS, max_files=limits.max_files,
                               max_bytes=limits.max_total_bytes)

        # 3. The fields, then the service does the rest (in a worker thread: it decodes every file)
        if not form.files:
            raise Invalid("The upload has no 'file' field. Attach one or more files.", code="missing_file")
        kind, name = form.fields.get("kind"), form.fields.get("name")
        if kind is None:
            raise Invalid("The field 'kind' is required: text, image or audio.", code="invalid_field")
        if name is None:
            raise Invalid("The field 'name' is required.", code="invalid_field")
        dedupe = _parse_bool("dedupe", form.fields.get("dedupe", "false"))
        min_chars = _parse_int("min_chars", form.fields.get("min_chars", "0"))
        return await run_in_threadpool(
            studio.datasets.create, form.files, kind, name, dedupe=dedupe, min_chars=min_chars
        )


@router.get(
    "/datasets", response_model=DatasetList, summary="List datasets", dependencies=[Depends(require_user)]
)
def list_datasets(studio: Studio = Depends(get_studio)) -> dict:
    return {"datasets": studio.datasets.list()}


@router.get(
    "/datasets/{dataset_id}",
    response_model=DatasetDetail,
    summary="A dataset with a preview",
    dependencies=[Depends(require_user)],
)
def get_dataset(dataset_id: str, request: Request, studio: Studio = Depends(get_studio)) -> dict:
    detail = studio.datasets.get(dataset_id)
    for item in detail["preview"]:
        if "index" in item:  # image and audio items: where their file can be fetched
            item["url"] = request.url_for(
                "dataset_item_file", dataset_id=dataset_id, index=item["index"]
            ).path
    return detail


@router.delete(
    "/datasets/{dataset_id}",
    response_model=Deleted,
    summary="Delete a dataset",
    dependencies=[Depends(require_admin)],
)
def delete_dataset(dataset_id: str, studio: Studio = Depends(get_studio)) -> dict:
    studio.datasets.delete(dataset_id)
    return {"deleted": dataset_id}


@router.get(
    "/datasets/{dataset_id}/items/{index}/file",
    name="dataset_item_file",
    summary="The stored image or audio file of one item",
    response_class=FileResponse,
    responses={200: {"description": "PNG or WAV", "content": {"image/png": {}, "audio/wav": {}}}},
    dependencies=[Depends(require_user)],
)
def dataset_item_file(dataset_id: str, index: int, studio: Studio = Depends(get_studio)) -> FileResponse:
    path = studio.datasets.item_path(dataset_id, index)  # the id is checked, the index is an int
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix])


def _parse_bool(field: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off", ""):
        return False
    raise Invalid(f"The field '{field}' must be true or false, not '{value[:20]}'.", code="invalid_field")


def _parse_int(field: str, value: str) -> int:
    try:
        n = int(value.strip() or "0")
    except ValueError:
        raise Invalid(
            f"The field '{field}' must be a whole number, not '{value[:20]}'.", code="invalid_field"
        ) from None
    if n < 0:
        raise Invalid(f"The field '{field}' must be 0 or more.", code="invalid_field")
    return n
