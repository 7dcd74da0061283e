"""Before a job starts: is its config valid, how many optimizer steps will it take, how long (at the
pace a past job of the same kind measured on this device — never a guess passed off as one), and
roughly how much memory. The Training tab shows this under its form; every number is labelled
as an estimate and says what it stands on."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from engines.training.footprint import count_parameters, image_resolution, transformer_shape
from engines.training.params import resolve_params
from studio.services.job_inputs import BASE_MODEL_KIND

FEW_STEPS = 50  # fewer optimizer steps than this barely move a model
CHARS_PER_TOKEN = 4  # English text through a GPT-2-style tokenizer, roughly
PACE_JOBS = 10  # the newest jobs looked at for a measured pace
# bytes a training run holds per parameter: fp32 weights; full fine-tuning adds the gradient and
# AdamW's two moments (4 + 4 + 8); LoRA trains about a hundredth of that many weights
WEIGHT_BYTES, FULL_STATE_BYTES, LORA_SHARE = 4, 12, 0.01
TEXT_ACTIVATION_BYTES = 4 * 24  # per token, per layer, per unit of width (fp32, attention + MLP), rough
IMAGE_ACTIVATION_BYTES = 4 * 1500  # per pixel of a training image in a UNet pass (fp32), rough


@dataclass
class Estimate:
    errors: list[str] = field(default_factory=list)  # the job would be refused: fix these first
    warnings: list[str] = field(default_factory=list)  # it would run, but probably not as meant
    steps: int | None = None  # optimizer steps in total
    steps_basis: str = ""  # how the step count was worked out
    seconds: float | None = None  # at the measured pace; None: no past job of this kind to go by
    pace_basis: str = ""
    memory_bytes: int | None = None
    memory_basis: str = ""


# -- pure parts (tested without a studio) --------------------------------------------------------
def optimizer_steps(kind: str, config: Any, dataset: dict[str, Any] | None) -> tuple[int | None, str]:
    """(steps, how they were counted); steps None when they depend on data not known yet."""
    if kind == "export":
        return 0, "an export trains nothing"
    if kind == "image-scratch":
        return config.vae_steps + config.unet_steps, "VAE steps + UNet steps"
    epochs = getattr(config, "epochs", 0) or 0
    # text-lora counts epochs only when max_steps is 0; the GAN trainer, whenever epochs is set
    if not epochs or (kind == "text-lora" and config.max_steps):
        return int(config.max_steps), "max_steps"
    if not dataset:
        return None, f"{epochs:g} epochs of the dataset (pick one to count the steps)"
    items = int(dataset.get("num_items") or 0)
    accum = getattr(config, "gradient_accumulation_steps", 1)
    if kind == "text-lora":
        kept = 1 - config.eval_fraction
        tokens = int(dataset.get("stats", {}).get("characters") or 0) / CHARS_PER_TOKEN
        sequences = max(math.ceil(items * kept), math.ceil(tokens * kept / config.block_size))
        micro = math.ceil(epochs * math.ceil(sequences / config.batch_size))
        return max(1, math.ceil(micro / accum)), (
            f"≈ {epochs:g} epochs × {sequences:,} sequences of {config.block_size} tokens "
            f"(~{CHARS_PER_TOKEN} characters a token) ÷ batch {config.batch_size * accum}")
    steps = max(1, math.ceil(epochs * items / (config.batch_size * accum)))
    return steps, f"{epochs:g} epochs × {items:,} items ÷ batch {config.batch_size * accum}"


def work_per_step(config: Any) -> int:
    """What one optimizer step processes, in units that make two jobs of one kind comparable."""
    batch = getattr(config, "batch_size", 1) * getattr(config, "gradient_accumulation_steps", 1)
    size = getattr(config, "block_size", None) or getattr(config, "resolution", None) or 1
    return batch * (size if hasattr(config, "block_size") else size * size)


def measured_pace(events: list[dict[str, Any]]) -> float | None:
    """Seconds per optimizer step over a job's logged steps (the first event, which carries the
    start-up, is the zero point); None with fewer than two timed events."""
    timed = [e for e in events if isinstance(e.get("time"), int | float) and isinstance(e.get("step"), int)]
    if len(timed) < 2:
        return None
    steps, seconds = timed[-1]["step"] - timed[0]["step"], timed[-1]["time"] - timed[0]["time"]
    return seconds / steps if steps > 0 and seconds > 0 else None


def training_memory(kind: str, config: Any, n_params: int | None, shape: tuple[int, int] | None,
                    full: bool, native_side: int | None = None) -> tuple[int | None, str]:
    """(bytes, basis): weights + optimizer state for the trained share + activations of one batch."""
    if n_params is None:
        return None, "unknown (the base model's weights are not on this machine yet)"
    state = FULL_STATE_BYTES if full else FULL_STATE_BYTES * LORA_SHARE
    total = n_params * (WEIGHT_BYTES + state)
    batch = getattr(config, "batch_size", 1)
    basis = f"{n_params / 1e6:,.1f} M parameters, {'full fine-tune' if full else 'LoRA'}"
    if kind.startswith("text") or kind == "reward":
        tokens = getattr(config, "block_size", None) or getattr(config, "max_length", 128)
        if shape:
            total += batch * tokens * shape[0] * shape[1] * TEXT_ACTIVATION_BYTES
        basis += f", batch {batch} × {tokens} tokens"
    elif kind.startswith("image"):
        side = getattr(config, "resolution", None) or native_side or 512
        total += batch * side * side * IMAGE_ACTIVATION_BYTES
        basis += f", batch {batch} × {side}² px"
    return int(total), basis


def check(kind: str, config_cls: type, params: dict[str, Any], dataset: dict[str, Any] | None) -> Estimate:
    """The config's errors, the step count and the warnings that need nothing but the params."""
    out = Estimate()
    try:
        config = resolve_params(config_cls, params)
    except ValueError as exc:
        out.errors.append(str(exc))
        return out
    out.steps, out.steps_basis = optimizer_steps(kind, config, dataset)
    if kind != "export" and out.steps is not None and out.steps < FEW_STEPS:
        out.warnings.append(f"Only {out.steps} optimizer steps: that barely changes a model. Aim for "
                            f"{FEW_STEPS} or more for a change you can see.")
    save_every = getattr(config, "save_every", 0)
    if out.steps and save_every and save_every > out.steps:
        out.warnings.append(f"save_every ({save_every}) is more than the {out.steps} steps: only the "
                            "final checkpoint and samples will be saved.")
    return out


# -- the studio's part: past jobs and the base model's files -------------------------------------
def estimate(studio: Any, kind: str, params: dict[str, Any], dataset_id: str | None,
             base_model: str | None) -> Estimate:
    """`check` plus the time at the measured pace and the memory of the chosen base model."""
    spec = studio.jobs.spec(kind)
    dataset = _dataset(studio, dataset_id)
    out = check(kind, spec.config_cls, params, dataset)
    if out.errors:
        return out
    config = resolve_params(spec.config_cls, params)
    _time(studio, kind, config, out)
    _memory(studio, kind, config, base_model, out)
    return out


def _dataset(studio: Any, dataset_id: str | None) -> dict[str, Any] | None:
    if not dataset_id:
        return None
    try:
        return studio.datasets.get(dataset_id)
    except Exception:  # noqa: BLE001 - a stale pick: estimate as if none were chosen
        return None


def _time(studio: Any, kind: str, config: Any, out: Estimate) -> None:
    same_kind = [j for j in studio.jobs.list(limit=50) if j["kind"] == kind and j["step"] >= 2][:PACE_JOBS]
    for job in same_kind:
        pace = _pace(studio, job["id"], job["updated_at"])
        if pace is None:
            continue
        try:
            past = resolve_params(type(config), job["params"])
        except ValueError:
            past = None
        scale = work_per_step(config) / work_per_step(past) if past else 1.0
        if out.steps is not None:
            out.seconds = out.steps * pace * scale
        out.pace_basis = (f"{pace:.3g} s/step measured on job {job['id']} on this machine"
                          + (f", × {scale:.2g} for this batch size" if abs(scale - 1) > 0.01 else ""))
        return
    out.pace_basis = "unknown until the first steps (no earlier job of this kind on this machine)"


_PACES: dict[tuple[str, str], float | None] = {}  # (job id, updated_at) → pace: a form edit reads no file twice


def _pace(studio: Any, job_id: str, updated_at: str | None) -> float | None:
    key = (job_id, str(updated_at))
    if key not in _PACES:
        if len(_PACES) > 256:
            _PACES.clear()
        _PACES[key] = measured_pace(studio.jobs.events(job_id))
    return _PACES[key]


def _memory(studio: Any, kind: str, config: Any, base_model: str | None, out: Estimate) -> None:
    model_kind = BASE_MODEL_KIND.get(kind)
    if model_kind is None or kind == "export":
        out.memory_basis = "not estimated for a model trained from scratch" if model_kind is None else \
            "about the model's own size (nothing is trained)"
        return
    if kind == "speech-finetune" and not base_model:  # its default base is the starter voice, not the default voice
        from engines.starter.shipped import TRAINED_SPEECH_VOICE

        base_model = TRAINED_SPEECH_VOICE
    try:
        spec = studio.models.resolve(base_model or None, model_kind)
        location = studio.models.registry.location(spec)
    except Exception:  # noqa: BLE001 - unknown base: the start itself says so
        out.memory_basis = "unknown (pick a base model)"
        return
    n_params, shape, side = _footprint(str(location))
    method = getattr(config, "method", "lora") or "auto"
    full = method == "full" or (method == "auto" and kind == "text-lora" and spec.is_starter) \
        or kind == "speech-finetune"  # every weight of a voice trains
    out.memory_bytes, out.memory_basis = training_memory(kind, config, n_params, shape, full, side)


@functools.lru_cache(maxsize=32)
def _footprint(location: str) -> tuple[int | None, tuple[int, int] | None, int | None]:
    return count_parameters(location), transformer_shape(location), image_resolution(location)
