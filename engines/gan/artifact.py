"""A trained GAN on disk: the artifact (`generator.safetensors` + `config.json`) a `gan` job writes,
and the generator users get rebuilt from a training checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engines.training import load_checkpoint, write_json_atomic

__all__ = ["load_generator_from_checkpoint", "prefix", "strip", "write_artifact"]


def write_artifact(out_dir: Path, generator: Any, model_cfg: Any, info: dict[str, Any]) -> None:
    """`generator.safetensors` + `config.json` ({"model": GanConfig, …}); each file replaced atomically."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    tmp = out_dir / ".generator.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, out_dir / "generator.safetensors")
    write_json_atomic(out_dir / "config.json", {"format": "dcgan", "model": model_cfg.to_dict(), **info})


def load_generator_from_checkpoint(path: Path, device: str = "cpu") -> Any:
    """A checkpoint folder → the generator users get (its EMA when the run keeps one), in eval mode,
    rebuilt from the saved GanConfig alone."""
    from engines.gan.model import GanConfig, Generator

    ckpt = load_checkpoint(Path(path), device=device)
    generator = Generator(GanConfig.from_dict(ckpt.meta["model"]))
    ema = strip(ckpt.tensors, "generator_ema.")
    generator.load_state_dict(ema or strip(ckpt.tensors, "generator."))
    return generator.to(device).eval()


def prefix(state: dict[str, Any], tag: str) -> dict[str, Any]:
    return {tag + k: v for k, v in state.items()}


def strip(tensors: dict[str, Any], tag: str) -> dict[str, Any]:
    return {k[len(tag) :]: v for k, v in tensors.items() if k.startswith(tag)}
