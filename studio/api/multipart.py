"""multipart/form-data read as it arrives, for the upload routes (datasets, adapter imports).

Starlette's own form parsing would first copy the whole body to the system temp folder; here
each 'file' part goes straight to its own file in the caller's scratch folder (`Scratch`, under
the data dir's tmp/; named by a counter, never by the client), the few text fields stay in
memory, and the size limit stops the upload the moment it is crossed. A kill mid-upload leaves
only that scratch folder, which the next start sweeps."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from studio.services.datasets import IncomingFile
from studio.services.datasets.uploads import mb
from studio.services.errors import BadRequest, Invalid, TooLarge

MAX_FIELD_BYTES = 4096  # a form field (not a file) longer than this is not a kind, name or number
FORM_OVERHEAD_BYTES = 1024 * 1024  # multipart boundaries and headers on top of the files' bytes


def multipart_boundary(request: Request, *, max_bytes: int, expected: str) -> bytes:
    """Refuse what is plainly wrong before reading the body; return the boundary."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise Invalid(f"Send it as multipart/form-data with {expected}.", code="missing_file")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + FORM_OVERHEAD_BYTES:
        raise TooLarge(
            f"The upload is {mb(int(length))}; the limit is {mb(max_bytes)} per upload. "
            "Upload fewer or smaller files.",
            code="upload_too_large",
        )
    return params[b"boundary"]


async def read_form(request: Request, boundary: bytes, folder: Path, *, fields: tuple[str, ...], max_files: int,
                    max_bytes: int) -> StreamingForm:
    form = StreamingForm(boundary, folder, fields=fields, max_files=max_files, max_bytes=max_bytes)
    try:
        async for chunk in request.stream():
            form.write(chunk)
        form.finish()
    finally:
        form.close()
    return form


class StreamingForm:
    def __init__(self, boundary: bytes, folder: Path, *, fields: tuple[str, ...], max_files: int, max_bytes: int):
        self.folder = folder
        self.allowed = fields
        self.max_files = max_files
        self.max_bytes = max_bytes
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
            if len(self.files) >= self.max_files:
                raise TooLarge(
                    f"The upload has more than {self.max_files:,} files. Put them in a .zip or send fewer, "
                    "larger files.",
                    code="too_many_files",
                )
            self._file_name = options.get(b"filename", b"").decode("utf-8", "replace")
            self._file_path = self.folder / f"{len(self.files):05d}.part"
            self._file = open(self._file_path, "wb")  # noqa: SIM115 - closed in _on_part_end or close()
        elif self._part_name in self.allowed:
            self._value = bytearray()
        else:
            raise Invalid(
                f"Unknown form field '{self._part_name[:40]}'; expected file, {', '.join(self.allowed)}.",
                code="invalid_field",
            )

    def _on_part_data(self, data: bytes) -> None:
        if self._file is not None:
            self.total += len(data)
            if self.total > self.max_bytes:
                raise TooLarge(
                    f"The upload is over the limit of {mb(self.max_bytes)}. Upload fewer or smaller files.",
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
            raise Invalid(f"The field '{self._part_name}' is not valid UTF-8.", code="invalid_field") from None

    def _on_end(self) -> None:
        self._ended = True
