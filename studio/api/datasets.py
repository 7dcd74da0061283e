"""REST routes for datasets. Thin: the upload is streamed to disk here, everything else is the service's.

The upload route parses multipart/form-data itself, as the bytes arrive, instead of letting the
framework spool the whole body to the system temp folder first: files land only in the data
dir, a body over the limit is refused as soon as it passes the limit (or before a byte is read,
when Content-Length says so), and the admin check runs before any of it.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from studio.api.deps import get_studio, require_admin, require_user
from studio.config import UploadLimits
from studio.services import Studio
from studio.services.datasets import IncomingFile
from studio.services.datasets.uploads import mb
from studio.services.errors import BadRequest, Invalid, TooLarge

router = APIRouter(tags=["datasets"])

FORM_FIELDS = ("kind", "name", "dedupe", "min_chars")
MAX_FIELD_BYTES = 4096  # a form field (not a file) longer than this is not a kind, name or number
FORM_OVERHEAD_BYTES = 1024 * 1024  # multipart boundaries and headers on top of the files' bytes
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
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise Invalid(
            "Send the upload as multipart/form-data with one or more 'file' fields, 'kind' and 'name'.",
            code="missing_file",
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_total_bytes + FORM_OVERHEAD_BYTES:
        raise TooLarge(
            f"The upload is {mb(int(length))}; the limit is {mb(limits.max_total_bytes)} per upload. "
            "Upload fewer or smaller files, or split the dataset.",
            code="upload_too_large",
        )

    # 2. Stream the files into a private folder under the data dir
    folder = studio.data_dir / "tmp" / f"api-upload-{secrets.token_hex(8)}"
    folder.mkdir(parents=True)
    form = _StreamingForm(params[b"boundary"], folder, limits)
    try:
        async for chunk in request.stream():
            form.write(chunk)
        form.finish()

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
    finally:
        form.close()
        shutil.rmtree(folder, ignore_errors=True)


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


class _StreamingForm:
    """A multipart/form-data body parsed as it arrives: each 'file' part goes to its own file
    (named by a counter, never by the client), the few text fields are kept in memory."""

    def __init__(self, boundary: bytes, folder: Path, limits: UploadLimits):
        self.folder = folder
        self.limits = limits
        self.files: list[IncomingFile] = []
        self.fields: dict[str, str] = {}
        self.total = 0
        self._ended = False
        self._headers: dict[bytes, bytes] = {}
        self._header_field = b""
        self._header_value = b""
        self._part_name = ""
        self._file: BinaryIO | None = None
        self._file_name = ""
        self._file_path: Path | None = None
        self._value = bytearray()
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": lambda d, s, e: self._add_header_field(d[s:e]),
                "on_header_value": lambda d, s, e: self._add_header_value(d[s:e]),
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": lambda d, s, e: self._on_part_data(d[s:e]),
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise BadRequest(
                f"The multipart body is malformed ({exc}). Send it again.", code="bad_multipart"
            ) from exc

    def finish(self) -> None:
        self._parser.finalize()
        if not self._ended:
            raise BadRequest(
                "The upload ended before the multipart body was complete. Send it again.",
                code="bad_multipart",
            )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- parser callbacks -------------------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}
        self._header_field = self._header_value = b""

    def _add_header_field(self, data: bytes) -> None:
        self._header_field += data

    def _add_header_value(self, data: bytes) -> None:
        self._header_value += data
        if len(self._header_value) > MAX_FIELD_BYTES:
            raise BadRequest("A multipart header is too long.", code="bad_multipart")

    def _on_header_end(self) -> None:
        self._headers[self._header_field.strip().lower()] = self._header_value.strip()
        self._header_field = self._header_value = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._part_name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._part_name == "file":
            if len(self.files) >= self.limits.max_files:
                raise TooLarge(
                    f"The upload has more than {self.limits.max_files:,} files. Put them in a .zip "
                    "or fewer, larger files.",
                    code="too_many_files",
                )
            self._file_name = options.get(b"filename", b"").decode("utf-8", "replace")
            self._file_path = self.folder / f"{len(self.files):05d}.part"
            self._file = open(self._file_path, "wb")  # closed in _on_part_end or close()
        elif self._part_name in FORM_FIELDS:
            self._value = bytearray()
        else:
            raise Invalid(
                f"Unknown form field '{self._part_name[:40]}'; expected file, {', '.join(FORM_FIELDS)}.",
                code="invalid_field",
            )

    def _on_part_data(self, data: bytes) -> None:
        if self._file is not None:
            self.total += len(data)
            if self.total > self.limits.max_total_bytes:
                raise TooLarge(
                    f"The upload is over the limit of {mb(self.limits.max_total_bytes)}. Upload fewer "
                    "or smaller files, or split the dataset.",
                    code="upload_too_large",
                )
            self._file.write(data)
        else:
            self._value += data
            if len(self._value) > MAX_FIELD_BYTES:
                raise Invalid(f"The field '{self._part_name}' is too long.", code="invalid_field")

    def _on_part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            assert self._file_path is not None
            empty_input = not self._file_name and self._file_path.stat().st_size == 0
            if not empty_input:  # a browser sends an empty, nameless part for an empty file input
                self.files.append(IncomingFile(name=self._file_name or "upload", path=self._file_path))
            return
        try:
            self.fields[self._part_name] = self._value.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(
                f"The field '{self._part_name}' is not valid UTF-8.", code="invalid_field"
            ) from None

    def _on_end(self) -> None:
        self._ended = True
