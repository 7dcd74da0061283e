"""Text datasets: read .txt / .jsonl / .json / .csv members into rows, filter them, sum them up.

Rows are ``{"text": …}`` (documents) or ``{"prompt": …, "completion": …}``; one dataset holds
one of the two formats. Every message names the file and the line (or item) at fault.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from studio.config import UploadLimits
from studio.services.datasets.uploads import Member
from studio.services.errors import Invalid, TooLarge, UnsupportedType

SHORT_TEXT_CHARS = 20  # rows shorter than this get a warning
_ROW_KEYS_HINT = "expected 'text', or 'prompt' and 'completion'"


def read_utf8(member: Member) -> str:
    """The member's text, decoded as strict UTF-8 (a BOM is fine), with newlines as '\\n'."""
    if member.sniffed == "utf16":
        raise Invalid(
            f"{member.label} is saved as UTF-16. Save the file as UTF-8 and upload again.",
            code="bad_encoding",
        )
    data = member.path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise Invalid(
            f"{member.label} line {line} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}). "
            "Save the file as UTF-8 and upload again.",
            code="bad_encoding",
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass
class TextRows:
    rows: list[dict] = field(default_factory=list)
    format: str | None = None  # "documents" | "prompt_completion"
    format_source: str = ""
    empty: int = 0  # rows skipped because they hold no text


def read_text_members(members: list[Member], limits: UploadLimits) -> TextRows:
    if not members:
        raise Invalid(
            "The upload has no text files. Upload .txt, .jsonl, .json or .csv files, or a .zip of them.",
            code="empty_dataset",
        )
    out = TextRows()
    for m in members:
        if m.family != "text":
            raise UnsupportedType(
                f"{m.label} is {'an image' if m.family == 'image' else 'audio'}, but this is a text dataset. "
                "Choose the matching kind, or upload .txt, .jsonl, .json or .csv files."
            )
        text = read_utf8(m)
        before = len(out.rows) + out.empty
        reader = {".txt": _read_txt, ".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv}[m.ext]
        for where, row in reader(m, text, limits):
            _add_row(out, row, where, m, limits)
        if len(out.rows) + out.empty == before:
            raise Invalid(
                f"{m.label} has no text in it. Remove it from the upload or fill it in.", code="empty_file"
            )
    return out


def _add_row(out: TextRows, row: dict, where: str, m: Member, limits: UploadLimits) -> None:
    fmt = "documents" if "text" in row else "prompt_completion"
    if out.format is None:
        out.format, out.format_source = fmt, where
    elif fmt != out.format:
        raise Invalid(
            f"{where} is a {_FMT_NAME[fmt]} row, but {out.format_source} is a {_FMT_NAME[out.format]} row. "
            "One dataset holds one format; upload them as two datasets.",
            code="mixed_formats",
        )
    chars = row_chars(row)
    if chars > limits.max_text_chars:
        raise TooLarge(
            f"{where} has {chars:,} characters; the limit is {limits.max_text_chars:,} per row. "
            "Split it into smaller documents (in .txt files a blank line starts a new one).",
            code="text_too_long",
        )
    if not (row.get("text") or row.get("completion") or "").strip():
        out.empty += 1
        return
    out.rows.append(row)


_FMT_NAME = {"documents": "plain 'text'", "prompt_completion": "'prompt'/'completion'"}


def row_chars(row: dict) -> int:
    return len(row["text"]) if "text" in row else len(row["prompt"]) + len(row["completion"])


def _read_txt(m: Member, text: str, limits: UploadLimits):
    """Documents are separated by one or more blank lines."""
    lines: list[str] = []
    start = 1
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            if not lines:
                start = number
            lines.append(line.rstrip())
        elif lines:
            yield f"{m.label} line {start}", {"text": "\n".join(lines).strip()}
            lines = []
    if lines:
        yield f"{m.label} line {start}", {"text": "\n".join(lines).strip()}


def _read_jsonl(m: Member, text: str, limits: UploadLimits):
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{m.label} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise Invalid(
                f"{where} is not valid JSON ({exc.msg} at column {exc.colno}). Each line must be one JSON "
                'object such as {"text": "..."}.',
                code="bad_json",
            ) from exc
        except RecursionError:
            raise Invalid(f"{where} is nested too deeply to be a row of text.", code="bad_json") from None
        yield where, _row_from_object(obj, where)


def _read_json(m: Member, text: str, limits: UploadLimits):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # one object per line: JSON Lines with a .json name
            yield from _read_jsonl(m, text, limits)
            return
        raise Invalid(
            f"{m.label} line {exc.lineno} is not valid JSON ({exc.msg} at column {exc.colno}).",
            code="bad_json",
        ) from exc
    except RecursionError:
        raise Invalid(
            f"{m.label} is nested too deeply; expected a list of objects with {_ROW_KEYS_HINT}.",
            code="bad_json",
        ) from None
    if isinstance(data, dict):
        yield m.label, _row_from_object(data, m.label)
        return
    if not isinstance(data, list):
        raise Invalid(
            f"{m.label} holds a JSON {_json_type(data)}; expected a list of objects with {_ROW_KEYS_HINT}.",
            code="bad_json",
        )
    for i, obj in enumerate(data, 1):
        where = f"{m.label} item {i}"
        yield where, _row_from_object(obj, where)


def _row_from_object(obj: object, where: str) -> dict:
    if not isinstance(obj, dict):
        raise Invalid(
            f"{where} is a JSON {_json_type(obj)}, not an object; {_ROW_KEYS_HINT}.", code="missing_column"
        )
    if "prompt" in obj and "completion" in obj:
        keys = ("prompt", "completion")
    elif "text" in obj:
        keys = ("text",)
    else:
        found = ", ".join(repr(k) for k in obj) or "none"
        raise Invalid(f"{where} has keys {found}; {_ROW_KEYS_HINT}.", code="missing_column")
    for k in keys:
        if not isinstance(obj[k], str):
            raise Invalid(
                f"{where}: '{k}' must be a string, not a JSON {_json_type(obj[k])}.", code="invalid_field"
            )
    return {k: obj[k] for k in keys}


def _json_type(v: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number"
    )


def _read_csv(m: Member, text: str, limits: UploadLimits):
    # The csv module refuses fields over a process-wide limit (128 KiB by default): raise it to
    # ours so that our own, clearer "too long" message is the one a user sees.
    limit = limits.max_text_chars
    if csv.field_size_limit() < limit + 1:
        csv.field_size_limit(limit + 1)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return
        columns = [c.strip().lower() for c in header]  # "Text" and "text" are the same column
        if "prompt" in columns and "completion" in columns:
            keys = ("prompt", "completion")
        elif "text" in columns:
            keys = ("text",)
        else:
            found = ", ".join(repr(c.strip()) for c in header if c.strip()) or "none"
            raise Invalid(
                f"{m.label} has columns {found}; expected a 'text' column, or 'prompt' and 'completion' columns "
                "(the first line is the header).",
                code="missing_column",
            )
        index = {k: columns.index(k) for k in keys}
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            where = f"{m.label} line {reader.line_num}"
            yield where, {k: record[i] if i < len(record) else "" for k, i in index.items()}
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise TooLarge(
                f"{m.label} line {reader.line_num + 1} has a field over the limit of "
                f"{limit:,} characters per row. Split it into smaller rows.",
                code="text_too_long",
            ) from exc
        raise Invalid(f"{m.label} line {reader.line_num} is not valid CSV ({exc}).", code="bad_csv") from exc


def filter_and_describe(
    rows: TextRows, *, dedupe: bool, min_chars: int
) -> tuple[list[dict], dict, list[str]]:
    """Apply min_chars and dedupe; return (rows, stats, warnings)."""
    warnings: list[str] = []
    kept = rows.rows
    if not kept:
        raise Invalid(
            "Every row in the upload is empty. Fill in the 'text' (or 'completion') fields.",
            code="empty_dataset",
        )
    if rows.empty:
        warnings.append(f"Skipped {rows.empty:,} empty row{_s(rows.empty)}.")
    if min_chars > 0:
        before = len(kept)
        kept = [r for r in kept if row_chars(r) >= min_chars]
        if before - len(kept):
            n = before - len(kept)
            warnings.append(f"Dropped {n:,} row{_s(n)} shorter than {min_chars:,} characters (min_chars).")
    seen: set[tuple[str, ...]] = set()
    unique, duplicates = [], 0
    for r in kept:
        key = tuple(" ".join(v.split()) for v in r.values())
        if key in seen:
            duplicates += 1
            if dedupe:
                continue
        seen.add(key)
        unique.append(r)
    if duplicates and dedupe:
        warnings.append(f"Removed {duplicates:,} duplicate row{_s(duplicates)} (exact, ignoring whitespace).")
    elif duplicates:
        warnings.append(
            f"{duplicates:,} row{_s(duplicates)} {'is an exact duplicate' if duplicates == 1 else 'are exact duplicates'}"
            " of earlier rows (ignoring whitespace). Turn on de-duplication to drop them."
        )
    kept = unique
    if not kept:
        raise Invalid(
            f"No rows are left after dropping rows shorter than {min_chars:,} characters. Lower min_chars.",
            code="empty_dataset",
        )
    chars = [row_chars(r) for r in kept]
    short = sum(c < SHORT_TEXT_CHARS for c in chars)
    if short:
        warnings.append(
            f"{short:,} row{_s(short)} {'is' if short == 1 else 'are'} shorter than "
            f"{SHORT_TEXT_CHARS} characters; very short texts teach a model little."
        )
    stats = {
        "items": len(kept),
        "format": rows.format,
        "characters": sum(chars),
        "words": sum(len(v.split()) for r in kept for v in r.values()),
        "mean_chars": round(sum(chars) / len(chars), 1),
        "min_chars": min(chars),
        "max_chars": max(chars),
    }
    return kept, stats, warnings


def _s(n: int) -> str:
    return "" if n == 1 else "s"
