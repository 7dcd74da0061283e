"""Checkpoints: `checkpoints/step-<N>/` = model.safetensors (weights) + state.pt (optimizer, scheduler,
RNG …, loadable with `weights_only=True`) + checkpoint.json (step, time and the trainer's meta).
Written atomically, the newest `keep_last` kept; a resumed run starts from the newest."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.training.run_dir import RunDir, read_json, write_json_atomic


@dataclass
class Checkpoint:
    step: int
    path: Path
    tensors: dict[str, Any]  # model weights (from model.safetensors)
    extra_state: dict[str, Any]  # optimizer, scheduler, rng … (from state.pt, loaded weights_only)
    meta: dict[str, Any]  # checkpoint.json: step, time and whatever the trainer passed


def _checkpoints_dir(run_dir: RunDir | Path) -> Path:
    return run_dir.checkpoints_dir if isinstance(run_dir, RunDir) else Path(run_dir) / "checkpoints"


def save_checkpoint(
    run_dir: RunDir | Path,
    step: int,
    tensors: dict[str, Any],
    extra_state: dict[str, Any] | None = None,
    *,
    meta: dict[str, Any] | None = None,
    keep_last: int = 2,
) -> Path:
    """Write `checkpoints/step-<step>/` atomically (temp folder, then rename); keep the newest `keep_last`.

    `tensors` go to safetensors; `extra_state` (optimizer/scheduler state_dicts, torch rng state,
    plain numbers) goes through torch.save and must load with `weights_only=True`.
    """
    import torch
    from safetensors.torch import save_file

    root = _checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    seen: set[int] = set()
    flat = {}
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        if t.data_ptr() in seen:  # tied weights: safetensors refuses shared storage
            t = t.clone()
        seen.add(t.data_ptr())
        flat[name] = t
    save_file(flat, str(tmp / "model.safetensors"))
    torch.save(extra_state or {}, tmp / "state.pt")
    write_json_atomic(tmp / "checkpoint.json", {"step": step, "time": time.time(), **(meta or {})})
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())

    if final.exists():  # re-saving the same step (e.g. stop right after a periodic save)
        shutil.rmtree(final)
    os.replace(tmp, final)
    _rotate(root, keep_last, keep=final)
    return final


def _rotate(root: Path, keep_last: int, keep: Path) -> None:
    steps = sorted(_list_checkpoints(root), reverse=True)
    for _, path in steps[max(keep_last, 1) :]:
        if path != keep:
            shutil.rmtree(path, ignore_errors=True)
    for stale in root.glob(".tmp-step-*"):  # left by a process killed mid-save
        if not stale.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(stale, ignore_errors=True)


def _list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    out = []
    for p in root.glob("step-*"):
        suffix = p.name.removeprefix("step-")
        if suffix.isdigit() and (p / "checkpoint.json").exists():
            out.append((int(suffix), p))
    return out


def list_checkpoints(run_dir: RunDir | Path) -> list[tuple[int, Path]]:
    return sorted(_list_checkpoints(_checkpoints_dir(run_dir)))


def latest_checkpoint(run_dir: RunDir | Path) -> tuple[int, Path] | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def load_checkpoint(path: Path, device: str = "cpu") -> Checkpoint:
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_json(path / "checkpoint.json") or {}
    tensors = load_file(str(path / "model.safetensors"), device=device)
    extra = torch.load(path / "state.pt", map_location=device, weights_only=True)
    return Checkpoint(step=int(meta.get("step", 0)), path=path, tensors=tensors, extra_state=extra, meta=meta)


def load_latest(run_dir: RunDir | Path, device: str = "cpu") -> Checkpoint | None:
    """The newest checkpoint, loaded; None when there is none."""
    found = latest_checkpoint(run_dir)
    return load_checkpoint(found[1], device=device) if found else None


def resume_training(run_dir: RunDir | Path, model: Any, optimizer: Any, scheduler: Any) -> Checkpoint | None:
    """Load the newest checkpoint's trainable weights and optimizer/scheduler states into place.

    Returns the checkpoint (its step, meta and extra state — restore its RNG with `restore_rng`
    once the model is ready), or None when there is none. A checkpoint that lacks some of the
    model's trainable weights is refused: it belongs to another configuration."""
    ckpt = load_latest(run_dir)
    if ckpt is None:
        return None
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = trainable - set(ckpt.tensors)
    if missing:
        raise ValueError(f"Checkpoint {ckpt.path.name} does not match this model ({len(missing)} weights missing).")
    model.load_state_dict(ckpt.tensors, strict=False)
    optimizer.load_state_dict(ckpt.extra_state["optimizer"])
    scheduler.load_state_dict(ckpt.extra_state["scheduler"])
    return ckpt


def save_training_state(
    run_dir: RunDir | Path,
    step: int,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    *,
    meta: dict[str, Any],
    keep_last: int,
) -> Path:
    """What `resume_training` reads back: the trainable weights, optimizer, scheduler and RNG."""
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
             **current_rng_state()}  # fmt: skip
    weights = {n: p for n, p in model.named_parameters() if p.requires_grad}
    return save_checkpoint(run_dir, step, weights, state, meta=meta, keep_last=keep_last)


def current_rng_state() -> dict[str, Any]:
    """The random state a checkpoint needs for an exact resume (CPU, and every GPU if any)."""
    import torch

    state: dict[str, Any] = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch_rng"])
    if torch.cuda.is_available() and state.get("cuda_rng"):
        torch.cuda.set_rng_state_all(state["cuda_rng"])
