"""From uploaded files to checked *members*: the upload's limits, zip safety and content sniffing.

Nothing here trusts a name from the client. A member's bytes are either the uploaded temp file
itself or a copy of one zip entry written under a generated name in the caller's work folder;
the names from the client or the archive are kept only to match captions and to write messages.
"""

from __future__ import annotations

import posixpath
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from studio.config import UploadLimits
from studio.services.errors import Invalid, TooLarge, UnsupportedType

Family = Literal["text", "image", "audio", "zip", "binary"]

TEXT_EXTS = (".txt", ".jsonl", ".json", ".csv")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
AUDIO_EXTS = (".wav", ".flac")
ARCHIVE_EXTS = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")

FAMILY_OF_EXT: dict[str, Family] = {
    **{e: "text" for e in TEXT_EXTS},
    **{e: "image" for e in IMAGE_EXTS},
    **{e: "audio" for e in AUDIO_EXTS},
    ".zip": "zip",
}
DESCRIPTION: dict[str, str] = {
    "text": "text",
    "image": "an image",
    "audio": "audio",
    "zip": "a zip archive",
    "binary": "binary data (not text, an image, audio or a zip)",
}
SNIFF_BYTES = 8192
CHUNK = 1024 * 1024
_MIN_RATIO_CHECK_BYTES = 4096  # entries this small cannot be a meaningful bomb
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class IncomingFile:
    """One uploaded file: ``name`` is the client's file name (messages and type hints only,
    never a path); ``path`` is where its bytes are (a temp file the caller owns)."""

    name: str
    path: Path


@dataclass
class Member:
    """One file of an upload after unpacking: a loose upload or one zip entry."""

    label: str  # for messages: "cat.png" or "photos.zip/cats/01.png"
    group: str  # the archive it came from ("" for loose files): captions match within a group
    name: str  # "/"-separated name inside its group, used only to match captions and metadata
    path: Path
    size: int
    family: Family  # from the content, checked against the extension
    sniffed: str  # "png", "jpeg", …, "wav", "flac", "text", "utf16"

    @property
    def ext(self) -> str:
        return posixpath.splitext(self.name)[1].lower()

    @property
    def basename(self) -> str:
        return posixpath.basename(self.name)

    @property
    def dir(self) -> str:
        return posixpath.dirname(self.name)

    @property
    def stem_key(self) -> tuple[str, str]:
        """(group, dir/stem): an image and its caption .txt share this key."""
        return self.group, posixpath.splitext(self.name)[0]


@dataclass
class Unpacked:
    members: list[Member]
    ignored: list[str]  # labels of zip entries of a type no dataset uses (README.md, …)
    sources: list[str]  # the client's file names, for the manifest


def display_name(client_name: str) -> str:
    """A client's file name made safe to print: its last component, no control characters."""
    base = re.split(r"[\\/]", client_name or "")[-1]
    base = _CONTROL.sub("", base).strip()
    return base[:100] or "unnamed file"


def mb(n: int | float) -> str:
    return f"{n / (1024 * 1024):,.1f} MB"


def unpack(files: list[IncomingFile], work_dir: Path, limits: UploadLimits) -> Unpacked:
    """Check the upload as a whole, open its archives safely and sniff every member's type."""
    # 1. The upload as a whole: count and size, before reading anything
    if not files:
        raise Invalid("Choose at least one file to upload.", code="missing_file")
    if len(files) > limits.max_files:
        raise TooLarge(
            f"The upload has {len(files):,} files; the limit is {limits.max_files:,}. "
            "Put them in fewer, larger files (e.g. one .jsonl) or split the dataset.",
            code="too_many_files",
        )
    sizes = []
    for f in files:
        try:
            sizes.append(Path(f.path).stat().st_size)
        except OSError as exc:
            raise Invalid(
                f"{display_name(f.name)} could not be read; upload it again.", code="missing_file"
            ) from exc
    total = sum(sizes)
    if total > limits.max_total_bytes:
        raise TooLarge(
            f"The upload is {mb(total)}; the limit is {mb(limits.max_total_bytes)} per upload. "
            "Upload fewer or smaller files, or split the dataset.",
            code="upload_too_large",
        )

    # 2. Each file: its extension, its content, and for zips every entry
    members: list[Member] = []
    ignored: list[str] = []
    budget = _ArchiveBudget(limits, loose_files=len(files))
    work_dir.mkdir(parents=True, exist_ok=True)
    for f, size in zip(files, sizes, strict=True):
        label = display_name(f.name)
        ext = posixpath.splitext(label)[1].lower()
        family = FAMILY_OF_EXT.get(ext)
        if family is None:
            raise UnsupportedType(
                f"{label}: files of type '{ext or 'no extension'}' are not supported. Upload text "
                f"({', '.join(TEXT_EXTS)}), images ({', '.join(IMAGE_EXTS)}), audio ({', '.join(AUDIO_EXTS)}) "
                "or a .zip of them."
            )
        path = Path(f.path)
        if size == 0:
            raise Invalid(
                f"{label} is empty (0 bytes). Choose the file again; it may not have saved.",
                code="empty_file",
            )
        sniffed, content = sniff(path)
        if family == "zip":
            if content != "zip" or not zipfile.is_zipfile(path):
                raise UnsupportedType(
                    f"{label} is named like a zip archive but its content is {DESCRIPTION[content]}."
                )
            members += _unpack_zip(path, label, work_dir, budget, ignored)
            continue
        _check_family(label, family, content)
        members.append(
            Member(label=label, group="", name=label, path=path, size=size, family=content, sniffed=sniffed)
        )
    return Unpacked(members=members, ignored=ignored, sources=[display_name(f.name) for f in files])


def sniff(path: Path) -> tuple[str, Family]:
    """The real type of a file from its first bytes: (format, family)."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", "image"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg", "image"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif", "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "image"
    if (
        head[:2] == b"BM"
        and len(head) >= 18
        and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
        and head[6:10] == b"\0\0\0\0"
    ):
        return "bmp", "image"
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "wav", "audio"
    if head.startswith(b"fLaC"):
        return "flac", "audio"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip", "zip"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf16", "text"  # text, but refused later with a message that says how to fix it
    if b"\x00" in head:
        return "binary", "binary"
    return "text", "text"


def _check_family(label: str, claimed: Family, content: Family) -> None:
    if content == "zip":
        raise UnsupportedType(
            f"{label} is a zip archive with a '{posixpath.splitext(label)[1]}' name. Rename it to .zip."
        )
    if claimed != content:
        raise UnsupportedType(
            f"{label} is named like {DESCRIPTION[claimed]} file but its content is {DESCRIPTION[content]}. "
            "Rename it to match what it holds, or export it again in the right format."
        )


class _ArchiveBudget:
    """Counts entries and declared bytes over all archives of one upload."""

    def __init__(self, limits: UploadLimits, loose_files: int):
        self.limits = limits
        self.files = loose_files
        self.declared = 0
        self.counter = 0


def _unpack_zip(
    path: Path, label: str, work_dir: Path, budget: _ArchiveBudget, ignored: list[str]
) -> list[Member]:
    limits = budget.limits
    check_entry_count(path, label, limits)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise Invalid(
            f"{label} is not a readable zip archive ({exc}). Create it again.", code="bad_archive"
        ) from exc
    with zf:
        # 1. Check every entry's header before reading any data
        wanted: list[zipfile.ZipInfo] = []
        budget.files -= 1  # the archive itself is not a dataset file; its entries are
        for info in zf.infolist():
            name = check_entry(info, label)
            if info.is_dir() or is_junk(name):
                continue
            ext = posixpath.splitext(name)[1].lower()
            if ext in ARCHIVE_EXTS:
                raise Invalid(
                    f"{label} contains another archive ({name}). Put all files in one zip; "
                    "archives inside archives are not opened.",
                    code="nested_archive",
                )
            if ext not in FAMILY_OF_EXT:
                ignored.append(f"{label}/{name}")
                continue
            budget.files += 1
            if budget.files > limits.max_files:
                raise TooLarge(
                    f"The upload has more than {limits.max_files:,} files (counting the entries "
                    f"of {label}). Split the dataset or combine small files.",
                    code="too_many_files",
                )
            if info.flag_bits & 0x1:
                raise Invalid(
                    f"{label}/{name} is password-protected. Create the zip without a password.",
                    code="bad_archive",
                )
            budget.declared += info.file_size
            if budget.declared > limits.max_uncompressed_bytes:
                raise TooLarge(
                    f"{label} unpacks to more than {mb(limits.max_uncompressed_bytes)}, the limit for one upload. "
                    "Split it into smaller zips and upload them as separate datasets.",
                    code="archive_too_large",
                )
            if info.file_size > _MIN_RATIO_CHECK_BYTES:
                ratio = info.file_size / max(info.compress_size, 1)
                if ratio > limits.max_compression_ratio:
                    raise TooLarge(
                        f"{label}/{name} expands {ratio:,.0f}× when unpacked; the limit is "
                        f"{limits.max_compression_ratio:,.0f}× (a guard against zip bombs). Upload the file "
                        "uncompressed or zip real data.",
                        code="compression_ratio_too_high",
                    )
            wanted.append(info)

        # 2. Copy each entry under a generated name, never trusting its header's size
        members = []
        for info in sorted(wanted, key=lambda i: i.filename):
            name = info.filename
            budget.counter += 1
            dest = work_dir / f"{budget.counter:06d}.member"
            copy_entry(zf, info, dest, f"{label}/{name}")
            claimed = FAMILY_OF_EXT[posixpath.splitext(name)[1].lower()]
            member_label = f"{label}/{name}"
            if info.file_size == 0:
                if claimed != "text":
                    raise Invalid(f"{member_label} is empty (0 bytes).", code="empty_file")
                sniffed, content = "text", "text"
            else:
                sniffed, content = sniff(dest)
            if content == "zip":
                raise Invalid(
                    f"{label} contains another archive ({name}). Put all files in one zip; "
                    "archives inside archives are not opened.",
                    code="nested_archive",
                )
            _check_family(member_label, claimed, content)
            members.append(
                Member(
                    label=member_label,
                    group=label,
                    name=name,
                    path=dest,
                    size=info.file_size,
                    family=content,
                    sniffed=sniffed,
                )
            )
        return members


def check_entry_count(path: Path, label: str, limits: UploadLimits) -> None:
    """Refuse an archive with absurdly many entries before zipfile reads its whole directory into
    memory. Folders and macOS metadata count here, hence the slack; the exact count comes later."""
    end_record = getattr(zipfile, "_EndRecData", None)  # private but stable; without it, skip this guard
    if end_record is None:
        return
    with open(path, "rb") as fh:
        try:
            record = end_record(fh)
        except (OSError, struct.error, zipfile.BadZipFile):
            return  # ZipFile() reports the damage with a better message
    if record and record[zipfile._ECD_ENTRIES_TOTAL] > 4 * limits.max_files + 1000:
        raise TooLarge(
            f"{label} has {record[zipfile._ECD_ENTRIES_TOTAL]:,} entries; the limit is "
            f"{limits.max_files:,} files per upload. Split it into smaller zips.",
            code="too_many_files",
        )


def check_entry(info: zipfile.ZipInfo, label: str) -> str:
    """The entry's name if it is a plain file or folder with a relative, clean name."""
    name = info.filename
    raw = info.orig_filename

    def unsafe(why: str) -> Invalid:
        shown = _CONTROL.sub("?", raw)[:200]
        return Invalid(
            f"{label} was refused: entry '{shown}' {why}. Create the zip from a plain folder of files.",
            code="unsafe_archive",
        )

    if "\x00" in raw or _CONTROL.search(name):
        raise unsafe("has control characters in its name")
    if "\\" in raw:
        raise unsafe("uses backslashes in its path")
    if name.startswith("/") or _DRIVE.match(name):
        raise unsafe("has an absolute path")
    if any(part == ".." for part in name.split("/")):
        raise unsafe("points outside the archive ('..')")
    file_type = stat.S_IFMT(info.external_attr >> 16)  # Unix mode bits; 0 when the zip tool kept none
    if file_type == stat.S_IFLNK:
        raise unsafe("is a symbolic link")
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise unsafe("is a device or special file")
    return name


def is_junk(name: str) -> bool:
    """macOS resource forks and dotfiles (.DS_Store, .git/…) are skipped quietly."""
    parts = [p for p in name.split("/") if p]
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, label: str) -> None:
    declared = info.file_size
    written = 0
    try:
        with zf.open(info) as src, open(dest, "wb") as out:
            while True:
                chunk = src.read(min(CHUNK, declared - written + 1))
                if not chunk:
                    break
                written += len(chunk)
                if written > declared:
                    raise Invalid(
                        f"{label} holds more data than its zip header declares. Create the zip again.",
                        code="unsafe_archive",
                    )
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise Invalid(
            f"{label} could not be read from the archive ({exc}). Create the zip again.", code="bad_archive"
        ) from exc
    if written != declared:
        raise Invalid(
            f"{label} is shorter than its zip header declares. Create the zip again.", code="bad_archive"
        )
