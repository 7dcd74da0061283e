"""REST routes for adapters and trained models: thin over `studio.adapters` (AdapterService).

The import route reads its multipart body as it arrives, straight into a private folder under the
data dir (never the system temp folder), and refuses a body over the upload limit as soon as it
passes it.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import BinaryIO

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from studio.api.deps import get_studio, require_admin, require_user
from studio.services import Studio
from studio.services.auth import User
from studio.services.datasets import IncomingFile
from studio.services.datasets.uploads import mb
from studio.services.errors import BadRequest, Invalid, TooLarge

router = APIRouter(tags=["adapters"])

IMPORT_FIELDS = ("base_model", "name")
MAX_FIELD_BYTES = 4096
MAX_FILES = 32  # an adapter folder is three files; a zip counts as one
FORM_OVERHEAD_BYTES = 1024 * 1024


class AdapterRename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., max_length=200)


class MixSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., max_length=64)
    weight: float = 1.0


class AdapterMix(BaseModel):
    """Mix ≥ 2 text adapters of one base model into a new adapter."""

    model_config = ConfigDict(extra="forbid")
    adapters: list[MixSource] = Field(..., min_length=2, max_length=8)
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
    studio: Studio = Depends(get_studio),
    user: User = Depends(require_user),
) -> FileResponse:
    """A zip of the adapter's folder (PEFT format), or with `merged=true` of the merged full model."""
    if merged:
        admin = require_admin(request)
        path = await run_in_threadpool(studio.adapters.merge_export, adapter_id, admin)
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
    sources = [s.model_dump() for s in body.adapters]
    return await run_in_threadpool(studio.adapters.mix, sources, body.name, user)


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
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise Invalid("Send the import as multipart/form-data with 'file', 'base_model' and 'name'.",
                      code="missing_file")  # fmt: skip
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_total_bytes + FORM_OVERHEAD_BYTES:
        raise TooLarge(f"The upload is {mb(int(length))}; the limit is {mb(limits.max_total_bytes)}.",
                       code="upload_too_large")  # fmt: skip
    folder = studio.data_dir / "tmp" / f"upload-{secrets.token_hex(8)}"
    folder.mkdir(parents=True)
    try:
        files, fields = await _read_form(request, params[b"boundary"], folder, limits.max_total_bytes)
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


async def _read_form(
    request: Request, boundary: bytes, folder: Path, max_bytes: int
) -> tuple[list[IncomingFile], dict[str, str]]:
    """Files to `folder` under generated names (never the client's), the few text fields in memory."""
    form = _ImportForm(boundary, folder, max_bytes)
    try:
        async for chunk in request.stream():
            form.write(chunk)
        form.finish()
    finally:
        form.close()
    return form.files, form.fields


class _ImportForm:
    """multipart/form-data parsed as it arrives: 'file' parts to disk, 'base_model'/'name' in memory."""

    def __init__(self, boundary: bytes, folder: Path, max_bytes: int):
        self.folder, self.max_bytes = folder, max_bytes
        self.files: list[IncomingFile] = []
        self.fields: dict[str, str] = {}
        self.total = 0
        self.ended = False
        self._headers: dict[bytes, bytes] = {}
        self._field, self._value = b"", b""
        self._part = ""
        self._file: BinaryIO | None = None
        self._file_name = ""
        self._buffer = bytearray()
        self._parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: setattr(self, "_field", self._field + d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": lambda d, s, e: self._data(d[s:e]),
            "on_part_end": self._end,
            "on_end": lambda: setattr(self, "ended", True),
        })  # fmt: skip

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise BadRequest(
                f"The multipart body is malformed ({exc}). Send it again.", code="bad_multipart"
            ) from exc

    def finish(self) -> None:
        self._parser.finalize()
        if not self.ended:
            raise BadRequest("The upload ended before the multipart body was complete.", code="bad_multipart")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _begin(self) -> None:
        self._headers, self._field, self._value = {}, b"", b""

    def _header_value(self, data: bytes) -> None:
        self._value += data
        if len(self._value) > MAX_FIELD_BYTES:
            raise BadRequest("A multipart header is too long.", code="bad_multipart")

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._part = options.get(b"name", b"").decode("utf-8", "replace")
        if self._part == "file":
            if len(self.files) >= MAX_FILES:
                raise TooLarge(f"Send at most {MAX_FILES} files: the adapter's folder, or one .zip of it.",
                               code="too_many_files")  # fmt: skip
            self._file_name = options.get(b"filename", b"").decode("utf-8", "replace")
            path = self.folder / f"{len(self.files):05d}.part"
            self._file = open(path, "wb")  # noqa: SIM115 - closed in _end() or close()
            self.files.append(IncomingFile(name=self._file_name or "upload", path=path))
        elif self._part in IMPORT_FIELDS:
            self._buffer = bytearray()
        else:
            raise Invalid(
                f"Unknown form field '{self._part[:40]}'; expected file, {', '.join(IMPORT_FIELDS)}."
            )

    def _data(self, data: bytes) -> None:
        if self._file is not None:
            self.total += len(data)
            if self.total > self.max_bytes:
                raise TooLarge(
                    f"The upload is over the limit of {mb(self.max_bytes)}.", code="upload_too_large"
                )
            self._file.write(data)
            return
        self._buffer += data
        if len(self._buffer) > MAX_FIELD_BYTES:
            raise Invalid(f"The field '{self._part}' is too long.")

    def _end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            if not self._file_name and self.files[-1].path.stat().st_size == 0:
                self.files.pop()  # a browser's empty file input
            return
        try:
            self.fields[self._part] = self._buffer.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(f"The field '{self._part}' is not valid UTF-8.") from None
