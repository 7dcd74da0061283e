"""Job kind `image-export`: an image model (a starter, a registered model, or an `image-scratch` job's
trained pipeline) as ONE original-layout Stable Diffusion checkpoint — the `.safetensors` file that
AUTOMATIC1111, Forge and ComfyUI load — checked by loading it back the way diffusers loads such files.

    1. load the base pipeline folder (fp32); with `lora`, fuse that image LoRA (inputs/lora, copied by the
       studio) into the UNet at `lora_scale`
    2. write `<name>.safetensors` in `precision` (engines/image/single_file.py maps the keys)
    3. reload it with StableDiffusionPipeline.from_single_file (offline: the base folder gives the configs),
       compare every weight and a fixed-seed image with the original pipeline's

Metrics: size_mb (the file), size_mb_original (the diffusers folder's weights and configs), tensors,
max_weight_diff (largest |original − reloaded| over all weights), max_pixel_diff (0–255 scale, a 2-step
64×64 image from seed 0) and the file's path relative to the data folder (GET /api/v1/image-exports/{job}/file).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engines.training import EventLog, RunDir, trainer_main

PRECISIONS = ("fp16", "bf16", "fp32")
CHECK_PROMPT = "a red fox in the snow"


@dataclass
class ImageExportConfig:
    """One-file Stable Diffusion checkpoint (original layout) for AUTOMATIC1111 / Forge / ComfyUI.

    The image model's UNet, VAE and text encoder in one .safetensors file, reloaded and compared with
    the original pipeline (weights and a fixed-seed image)."""

    precision: str = "fp16"  # fp16 | bf16 | fp32: the dtype of every float weight in the file
    check_steps: int = 2  # denoising steps of the fixed-seed comparison image
    check_size: int = 64  # its width and height in pixels (a multiple of 8)
    lora: str | None = None  # an image LoRA id or name fused into the base first (the studio checks its base)
    lora_scale: float = 1.0  # the LoRA's weight when fused, 0 to 2

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not '{self.precision}'")
        if not 1 <= int(self.check_steps) <= 50:
            raise ValueError(f"check_steps must be between 1 and 50 (it was {self.check_steps})")
        if int(self.check_size) % 8 or not 8 <= int(self.check_size) <= 1024:
            raise ValueError(f"check_size must be a multiple of 8 between 8 and 1024 (it was {self.check_size})")
        if not 0.0 <= float(self.lora_scale) <= 2.0:
            raise ValueError(f"lora_scale must be between 0 and 2 (it was {self.lora_scale})")


CONFIG_CLASS = ImageExportConfig


def file_name(model_id: str, precision: str, lora: str | None = None) -> str:
    """`starter/sd-tiny` → `sd-tiny-fp16.safetensors` (`sd-tiny-<lora>-fp16…` with a LoRA fused in): a name
    a web UI's model list shows well."""
    stem = "-".join(re.sub(r"[^A-Za-z0-9._-]+", "-", part.rsplit("/", 1)[-1]).strip("-.")[:60] or "model"
                    for part in (model_id, *([lora] if lora else [])))
    return f"{stem}-{precision}.safetensors"


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


def _image(pipe: Any, config: ImageExportConfig) -> Any:
    import torch

    generator = torch.Generator("cpu").manual_seed(0)
    return pipe(CHECK_PROMPT, num_inference_steps=config.check_steps, height=config.check_size,
                width=config.check_size, generator=generator, output_type="np").images[0]


def fuse_lora(pipe: Any, folder: Path, scale: float) -> None:
    """Fold a diffusers-format image LoRA into the pipeline's weights for good (no LoRA layers left)."""
    pipe.load_lora_weights(str(folder), adapter_name="export", use_safetensors=True)
    pipe.fuse_lora(lora_scale=float(scale), adapter_names=["export"])
    pipe.unload_lora_weights()  # drops the LoRA layers; the fused weights stay


def reload(path: Path, config_folder: str, dtype: Any) -> Any:
    """The file loaded as a user's diffusers would, offline: `config_folder` supplies the component configs,
    tokenizer and scheduler (an original-layout file holds weights only)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_single_file(
        str(path), config=config_folder, local_files_only=True, torch_dtype=dtype,
        safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(config: ImageExportConfig, run_dir: RunDir) -> dict[str, Any]:
    import numpy as np
    import torch

    from engines.image.single_file import save_checkpoint
    from engines.image.train_model import load_pipeline, resolve_base
    from engines.precision import DTYPE_NAMES
    from engines.training.artifacts import artifact_dir, atomic_folder

    job = run_dir.read_job()
    spec, location = resolve_base(job, job.models_dir())
    if not (Path(location) / "model_index.json").is_file():
        raise ValueError(f"'{spec.id}' is not a diffusers pipeline folder here ({location}); "
                         "only a downloaded or trained Stable Diffusion folder can be exported.")
    log = EventLog(run_dir, tensorboard=False)
    total = 3

    # 1. The original pipeline.
    original = load_pipeline(location, torch.float32)
    lora_folder = run_dir.path / "inputs" / "lora"
    if lora_folder.is_dir():
        fuse_lora(original, lora_folder, config.lora_scale)
    log.append(1, total_steps=total, progress=1 / total, stage="loaded", message=f"loaded {spec.id}" + (
        f" + LoRA {config.lora} × {config.lora_scale}" if lora_folder.is_dir() else ""))

    # 2. One file, written into the job's output folder in one rename.
    dtype = getattr(torch, DTYPE_NAMES[config.precision])
    out = artifact_dir(job, run_dir)  # models/trained/<job-id>/ in the studio
    name = file_name(spec.id, config.precision, config.lora if lora_folder.is_dir() else None)
    meta = {"base_model": spec.id, "precision": config.precision, "layout": "ldm (stable diffusion v1)"}
    if lora_folder.is_dir():
        meta.update(lora=str(config.lora), lora_scale=str(config.lora_scale))
    with atomic_folder(out) as tmp:
        tensors = save_checkpoint(original, tmp / name, dtype, metadata=meta)
        (tmp / "export.json").write_text(json.dumps({"kind": "image-export", **meta, "file": name,
                                                     "config": asdict(config)}, indent=1), encoding="utf-8")
    path = out / name
    log.append(2, total_steps=total, progress=2 / total, stage="saved", tensors=tensors)

    # 3. Reload as a user would (computing in fp32 on the CPU) and compare.
    reloaded = reload(path, location, torch.float32)
    weight_diff = 0.0
    for part in ("unet", "vae", "text_encoder"):
        a, b = getattr(original, part).state_dict(), getattr(reloaded, part).state_dict()
        if set(a) != set(b):
            raise ValueError(f"the reloaded {part} has other weights than the original: {sorted(set(a) ^ set(b))[:5]}")
        for key, value in a.items():
            weight_diff = max(weight_diff, float((value.float() - b[key].float()).abs().max()))
    pixel_diff = float(np.abs(_image(original, config) - _image(reloaded, config)).max()) * 255.0
    data_dir = job.models_dir().resolve().parent
    shown = path.resolve()
    metrics = {
        "size_mb": round(path.stat().st_size / 1e6, 3),
        "size_mb_original": round(folder_bytes(Path(location)) / 1e6, 3),
        "tensors": tensors, "precision": config.precision, "max_weight_diff": round(weight_diff, 6),
        "max_pixel_diff": round(pixel_diff, 3), "check": f"{config.check_steps} steps, "
        f"{config.check_size}x{config.check_size}, seed 0", "base_model": spec.id, "file": name,
        "lora": config.lora if lora_folder.is_dir() else None,
        "export_path": str(shown.relative_to(data_dir)) if shown.is_relative_to(data_dir) else str(shown),
    }
    log.append(3, total_steps=total, progress=1.0, stage="measured", **metrics)
    log.close()
    # No model row: the file is a deliverable for another web UI; the job's metrics say where it is.
    return {"metrics": metrics, "artifact": None}


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
