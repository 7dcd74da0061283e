"""Stable Diffusion image generation: the engine, schedulers by name, and PNG parameters."""

from engines.image.generate import (
    GeneratedImage,
    ImageEngine,
    ImageGenerationRequest,
    ImageGenerationResult,
    UnsupportedCheckpoint,
    latents_preview,
    ships_safety_checker,
)
from engines.image.schedulers import DEFAULT as DEFAULT_SCHEDULER
from engines.image.schedulers import SCHEDULER_NAMES

__all__ = [
    "DEFAULT_SCHEDULER",
    "SCHEDULER_NAMES",
    "GeneratedImage",
    "ImageEngine",
    "ImageGenerationRequest",
    "ImageGenerationResult",
    "UnsupportedCheckpoint",
    "latents_preview",
    "ships_safety_checker",
]
