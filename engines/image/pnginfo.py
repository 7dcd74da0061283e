"""Generation parameters in a PNG's `parameters` text chunk, in the AUTOMATIC1111 format:

    a castle on a hill, golden hour
    Negative prompt: blurry
    Steps: 4, Sampler: Euler a, CFG scale: 5.0, Seed: 123, Size: 64x64, Model: starter/sd-tiny

The last line holds `Key: value` pairs separated by commas; a value with a comma, a quote or a
newline is written as a JSON string. `parse` reads what `format_parameters` writes (and what
other A1111-style tools write); `save_png` writes a PNG whose bytes depend only on the pixels and
the text (no timestamps), so the same request and seed give a byte-identical file.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEY = "parameters"

# A1111's own pattern for one `Key: value` pair of the last line.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_NEGATIVE = "Negative prompt:"

# Line key → (dict key, converter) for the fields the studio knows.
_FIELDS: dict[str, tuple[str, type]] = {
    "Steps": ("steps", int),
    "Sampler": ("sampler", str),
    "CFG scale": ("cfg_scale", float),
    "Seed": ("seed", int),
    "Model": ("model", str),
    "Denoising strength": ("denoising_strength", float),
}


def _quote(value: Any) -> str:
    text = str(value)
    if any(c in text for c in ',"\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def format_parameters(*, prompt: str, negative_prompt: str = "", steps: int, sampler: str, cfg_scale: float,
                      seed: int, width: int, height: int, model: str, lora: str | None = None,
                      lora_scale: float = 1.0, denoising_strength: float | None = None,
                      extra: dict[str, Any] | None = None) -> str:
    """The `parameters` text for one image (A1111 layout; fixed key order so it is deterministic)."""
    pairs: list[tuple[str, Any]] = [
        ("Steps", int(steps)),
        ("Sampler", sampler),
        ("CFG scale", float(cfg_scale)),
        ("Seed", int(seed)),
        ("Size", f"{int(width)}x{int(height)}"),
        ("Model", model),
    ]
    if lora:
        pairs.append(("Lora", f"{lora}:{float(lora_scale)}"))
    if denoising_strength is not None:
        pairs.append(("Denoising strength", float(denoising_strength)))
    pairs.extend((extra or {}).items())
    lines = [prompt]
    if negative_prompt:
        lines.append(f"{_NEGATIVE} {negative_prompt}")
    lines.append(", ".join(f"{key}: {_quote(value)}" for key, value in pairs))
    return "\n".join(lines)


def _snake(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def parse(text: str) -> dict[str, Any]:
    """Read A1111 `parameters` text into a dict: prompt, negative_prompt, steps, sampler, cfg_scale,
    seed, width, height, model, lora + lora_scale, denoising_strength; other keys snake_cased."""
    lines = text.strip().split("\n")
    params_line = ""
    if lines and len(_PARAM.findall(lines[-1])) >= 3:
        params_line = lines.pop()
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        if line.startswith(_NEGATIVE):
            in_negative = True
            line = line[len(_NEGATIVE):].lstrip()
        (negative if in_negative else prompt).append(line)
    out: dict[str, Any] = {"prompt": "\n".join(prompt).strip(), "negative_prompt": "\n".join(negative).strip()}
    for key, raw in _PARAM.findall(params_line):
        key, value = key.strip(), _unquote(raw.strip())
        if key == "Size" and _SIZE.match(value):
            width, height = _SIZE.match(value).groups()  # type: ignore[union-attr]
            out["width"], out["height"] = int(width), int(height)
        elif key == "Lora":
            name, _, scale = value.rpartition(":")
            try:
                out["lora"], out["lora_scale"] = name, float(scale)
            except ValueError:
                out["lora"] = value
        elif key in _FIELDS:
            name, convert = _FIELDS[key]
            try:
                out[name] = convert(value)
            except ValueError:
                out[name] = value
        else:
            out[_snake(key)] = value
    return out


def read_png_parameters(source: str | Path | bytes) -> str | None:
    """The `parameters` text of a PNG (file path or bytes), or None when it has none.

    Raises ValueError when the input is not a readable PNG.
    """
    from PIL import Image

    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("Not a PNG file.")
    try:
        with Image.open(io.BytesIO(data)) as im:
            text = im.info.get(KEY)  # chunks before the image data, read without decoding pixels
            if text is None:
                im.load()  # chunks after the image data (PIL's decompression-bomb guard applies)
                text = getattr(im, "text", {}).get(KEY)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"Not a readable PNG: {exc}") from exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text


def save_png(image: Any, path: str | Path, parameters: str) -> Path:
    """Write `image` (PIL) as a PNG with a `parameters` chunk; atomic (temp file + rename)."""
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    info = PngInfo()
    info.add_text(KEY, parameters)  # tEXt, or iTXt when the text is not Latin-1
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        image.save(tmp, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
