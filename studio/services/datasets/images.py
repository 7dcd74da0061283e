"""Image datasets: decode every image fully, pair it with its caption, store it as a clean PNG.

The stored folder is what ``datasets.load_dataset("imagefolder", data_dir=…)`` reads:
``000000.png``, ``000001.png``, … (RGB, no metadata) and ``metadata.jsonl`` with
``file_name`` and ``text`` (the caption, "" when there is none).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from studio.config import UploadLimits
from studio.services.datasets.text import read_utf8
from studio.services.datasets.uploads import Member
from studio.services.errors import Invalid, StudioError, TooLarge, UnsupportedType

PIL_FORMATS = ["PNG", "JPEG", "WEBP", "GIF", "BMP"]  # nothing else is even tried (JPEG covers MPO)
TINY_SIDE = 64  # images smaller than this on a side get a warning
METADATA = "metadata.jsonl"


def build_image_dataset(
    members: list[Member], out_dir: Path, limits: UploadLimits
) -> tuple[int, dict, list[str]]:
    """Write the normalised image folder; return (num_items, stats, warnings)."""
    # 1. Sort the members into images, caption files and metadata files
    images: list[Member] = []
    sidecars: dict[tuple[str, str], Member] = {}
    metadata: list[Member] = []
    unused: list[str] = []
    for m in members:
        if m.family == "audio":
            raise UnsupportedType(
                f"{m.label} is audio, but this is an image dataset. Choose the kind 'audio', "
                "or upload images (PNG, JPEG, WebP, GIF, BMP)."
            )
        if m.family == "image":
            images.append(m)
        elif m.basename.lower() == METADATA:
            metadata.append(m)
        elif m.ext == ".txt":
            sidecars[m.stem_key] = m
        else:
            unused.append(m.label)
    if not images:
        raise Invalid(
            "The upload has no images. Upload PNG, JPEG, WebP, GIF or BMP files, or a .zip of them.",
            code="empty_dataset",
        )

    # 2. Captions: metadata.jsonl first, then a .txt beside the image
    captions = _captions_from_metadata(metadata, images, limits)
    for img in images:
        txt = sidecars.pop(img.stem_key, None)
        if txt is not None and (img.group, img.name) not in captions:
            captions[(img.group, img.name)] = _caption_from_txt(txt, limits)
    unused += [m.label for m in sidecars.values()]

    # 3. Decode, check and re-encode every image
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, sizes, digests = [], [], set()
    duplicates = animated = 0
    for i, m in enumerate(images):
        img, frames = load_image(m, limits)
        file_name = f"{i:06d}.png"
        digest = hashlib.sha256(img.tobytes()).hexdigest() + f"{img.size}"
        duplicates += digest in digests
        digests.add(digest)
        animated += frames > 1
        img.save(out_dir / file_name, format="PNG")
        sizes.append(img.size)
        rows.append({"file_name": file_name, "text": captions.get((m.group, m.name), "")})
    with open(out_dir / METADATA, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    # 4. Stats and warnings
    widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
    captioned = sum(bool(r["text"]) for r in rows)
    stats = {
        "items": len(rows),
        "min_width": min(widths),
        "max_width": max(widths),
        "mean_width": round(sum(widths) / len(widths), 1),
        "min_height": min(heights),
        "max_height": max(heights),
        "mean_height": round(sum(heights) / len(heights), 1),
        "captioned": captioned,
    }
    warnings = []
    tiny = sum(min(s) < TINY_SIDE for s in sizes)
    if tiny:
        warnings.append(
            f"{tiny:,} image{_s(tiny)} {_are(tiny)} smaller than {TINY_SIDE} px on a side; "
            "they will look blurry once scaled up to the training resolution."
        )
    distinct = len(set(sizes))
    if distinct > 1:
        warnings.append(
            f"Images come in {distinct:,} different sizes ({min(widths)}–{max(widths)} px wide, "
            f"{min(heights)}–{max(heights)} px high); training resizes and crops them to one square size."
        )
    if captioned < len(rows):
        missing = len(rows) - captioned
        warnings.append(
            f"{missing:,} of {len(rows):,} images {'has' if missing == 1 else 'have'} no caption. "
            f"Add captions in {METADATA} or a .txt beside each image; LoRA training uses them as prompts."
        )
    if duplicates:
        warnings.append(
            "1 image is an exact duplicate of an earlier one."
            if duplicates == 1
            else f"{duplicates:,} images are exact duplicates of earlier ones."
        )
    if animated:
        warnings.append(f"{animated:,} animated image{_s(animated)}: only the first frame is used.")
    if unused:
        shown = ", ".join(unused[:3]) + (f" and {len(unused) - 3:,} more" if len(unused) > 3 else "")
        warnings.append(f"Ignored {len(unused):,} file{_s(len(unused))} that match no image: {shown}.")
    return len(rows), stats, warnings


def load_image(m: Member, limits: UploadLimits) -> tuple[Image.Image, int]:
    """The image fully decoded as RGB without metadata, and its number of frames."""
    Image.init()  # registers every plugin once; `formats=` below fails on ones not yet registered
    try:
        # 1. The header only: refuse decompression bombs before decoding a single pixel
        with Image.open(m.path, formats=PIL_FORMATS) as im:
            w, h = im.size
            if w * h > limits.max_image_pixels:
                raise _too_many_pixels(m, w, h, limits)
            if w < 1 or h < 1:
                raise Invalid(f"{m.label} has no pixels ({w}×{h}).", code="bad_image")
            im.verify()  # checksums and structure
        # 2. A full decode (verify() leaves the image unusable, so open it again)
        with Image.open(m.path, formats=PIL_FORMATS) as im:
            im.load()
            frames = getattr(im, "n_frames", 1)
            im = ImageOps.exif_transpose(im)  # phone photos: apply the orientation before it is dropped
            rgb = _to_rgb(im)
    except Image.DecompressionBombError as exc:
        raise TooLarge(
            f"{m.label} declares more pixels than the limit of {limits.max_image_pixels:,}. "
            "Resize it (e.g. to 2048 px on the long side) and upload again.",
            code="image_too_large",
        ) from exc
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL signals corrupt data with many exception types
        reason = str(exc).replace(str(m.path), m.label)[:200] or type(exc).__name__
        raise Invalid(
            f"{m.label} could not be decoded as an image ({reason}). The file is damaged or incomplete; "
            "export it again.",
            code="bad_image",
        ) from exc
    clean = Image.new("RGB", rgb.size)  # a fresh image carries no EXIF, ICC or text chunks
    clean.paste(rgb)
    return clean, frames


def _to_rgb(im: Image.Image) -> Image.Image:
    """Flatten transparency onto white (not black, which is what a plain convert gives)."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if im.mode.startswith("I"):  # 16-bit greyscale PNG: 0…65535 → 0…255
        grey = np.asarray(im.convert("I"), dtype=np.float64) / 257.0  # (H, W)
        return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


def _too_many_pixels(m: Member, w: int, h: int, limits: UploadLimits) -> TooLarge:
    return TooLarge(
        f"{m.label} is {w:,}×{h:,} = {w * h:,} pixels; the limit is {limits.max_image_pixels:,}. "
        "Resize it (e.g. to 2048 px on the long side) and upload again.",
        code="image_too_large",
    )


def _captions_from_metadata(
    metadata: list[Member], images: list[Member], limits: UploadLimits
) -> dict[tuple[str, str], str]:
    """metadata.jsonl rows {"file_name", "text"}; file_name is relative to the metadata file's folder."""
    known = {(m.group, m.name) for m in images}
    captions: dict[tuple[str, str], str] = {}
    for meta in metadata:
        for number, line in enumerate(read_utf8(meta).split("\n"), 1):
            if not line.strip():
                continue
            where = f"{meta.label} line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise Invalid(
                    f"{where} is not valid JSON ({exc.msg} at column {exc.colno}).", code="bad_json"
                ) from exc
            except RecursionError:
                raise Invalid(f"{where} is nested too deeply.", code="bad_json") from None
            if not isinstance(row, dict) or "file_name" not in row or "text" not in row:
                found = ", ".join(repr(k) for k in row) if isinstance(row, dict) else "none"
                raise Invalid(
                    f"{where} has keys {found}; expected 'file_name' and 'text'.", code="missing_column"
                )
            if not isinstance(row["file_name"], str) or not isinstance(row["text"], str):
                raise Invalid(f"{where}: 'file_name' and 'text' must be strings.", code="invalid_field")
            key = (meta.group, posixpath.normpath(posixpath.join(meta.dir, row["file_name"])))
            if key not in known:
                raise Invalid(
                    f"{where} refers to '{row['file_name'][:200]}', which is not an image in the upload. "
                    "Fix the file name or add the image.",
                    code="missing_file",
                )
            if key in captions:
                raise Invalid(
                    f"{where} gives a second caption for '{row['file_name'][:200]}'. Keep one line per "
                    "image.",
                    code="duplicate_file",
                )
            captions[key] = _check_caption(row["text"].strip(), where, limits)
    return captions


def _caption_from_txt(m: Member, limits: UploadLimits) -> str:
    return _check_caption(read_utf8(m).strip(), m.label, limits)


def _check_caption(text: str, where: str, limits: UploadLimits) -> str:
    if len(text) > limits.max_text_chars:
        raise TooLarge(
            f"The caption in {where} has {len(text):,} characters; the limit is "
            f"{limits.max_text_chars:,}. Shorten it.",
            code="text_too_long",
        )
    return text


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"
