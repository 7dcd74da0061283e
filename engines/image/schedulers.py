"""Sampler names (as AUTOMATIC1111-style tools write them) → diffusers scheduler classes.

A scheduler is rebuilt from the model's own scheduler config (`from_config`), so the noise schedule
the model was trained with (betas, timestep spacing, prediction type) carries over; only the
solver changes. "Default" is the model's own scheduler, untouched.
"""

from __future__ import annotations

from typing import Any

DEFAULT = "Default"

# name → (diffusers class name, config overrides). The first name listed for a class (without
# overrides) is the one written into PNG parameters for a model whose own scheduler is that class.
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    DEFAULT: ("", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                 "use_karras_sigmas": False}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                        "use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "PNDM": ("PNDMScheduler", {"skip_prk_steps": True}),  # PLMS, as SD 1.x ships it
}
SCHEDULER_NAMES: tuple[str, ...] = tuple(SCHEDULERS)


def build_scheduler(name: str, base_config: Any) -> Any:
    """A new scheduler `name` configured from `base_config` (the model's own scheduler config)."""
    import diffusers

    if name not in SCHEDULERS or name == DEFAULT:
        raise KeyError(f"Unknown scheduler '{name}'. Choose one of: {', '.join(SCHEDULER_NAMES)}.")
    class_name, overrides = SCHEDULERS[name]
    cls = getattr(diffusers, class_name)
    return cls.from_config(base_config, **overrides)


def sampler_name(scheduler: Any) -> str:
    """The A1111-style name of a scheduler instance (for PNG parameters), else its class name."""
    class_name = type(scheduler).__name__
    karras = bool(getattr(scheduler.config, "use_karras_sigmas", False))
    for name, (cls, overrides) in SCHEDULERS.items():
        if cls == class_name and bool(overrides.get("use_karras_sigmas", False)) == karras:
            return name
    return class_name.removesuffix("Scheduler")
