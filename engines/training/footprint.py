"""A model's size read from its files without loading it: the parameter count from the safetensors
headers, and the transformer's width and depth from its config.json. For the studio's rough
memory estimate before a job starts."""

from __future__ import annotations

import json
import math
from pathlib import Path

WIDTH_KEYS = ("n_embd", "hidden_size", "d_model")
DEPTH_KEYS = ("n_layer", "num_hidden_layers", "num_layers")


def count_parameters(location: str | Path) -> int | None:
    """Parameters in the .safetensors files at `location` (a file or a folder, searched recursively);
    None when there are none. Only the headers are read."""
    from safetensors import safe_open

    path = Path(location)
    files = [path] if path.is_file() else sorted(path.rglob("*.safetensors")) if path.is_dir() else []
    total = 0
    for file in files:
        if file.suffix != ".safetensors":
            continue
        with safe_open(str(file), framework="np") as weights:
            total += sum(math.prod(weights.get_slice(key).get_shape()) for key in weights.keys())  # noqa: SIM118
    return total or None


def transformer_shape(location: str | Path) -> tuple[int, int] | None:
    """(width, depth) from the config.json of a transformer folder; None when it has none."""
    config = Path(location) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    width = next((data[k] for k in WIDTH_KEYS if isinstance(data.get(k), int)), None)
    depth = next((data[k] for k in DEPTH_KEYS if isinstance(data.get(k), int)), None)
    return (width, depth) if width and depth else None


def image_resolution(location: str | Path) -> int | None:
    """The pixel size a diffusers pipeline folder was trained at: its UNet's sample size times the
    VAE's downscaling (2 per block after the first); None when the folder does not say."""
    try:
        unet = json.loads((Path(location) / "unet" / "config.json").read_text(encoding="utf-8"))
        vae = json.loads((Path(location) / "vae" / "config.json").read_text(encoding="utf-8"))
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return None
