"""What a job starts from, checked before anything is written: a base model must be one the
registry knows, of the model kind the job's trainer loads — never a path or a free string that
only the child process would trip over."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from engines.registry import UnknownModel
from studio.services.errors import Invalid

# job kind → the kind of model it starts from; kinds not listed train from scratch
# (image-scratch trains from scratch but may reuse the VAE of the image model given as its base)
BASE_MODEL_KIND = {"text-lora": "text", "text-feedback": "text", "reward": "text", "image-lora": "image",
                   "image-scratch": "image", "export": "text", "image-export": "image",
                   "speech-finetune": "speech"}
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def check_base_model(kind: str, base_model: str | None, resolve: Callable[[str, str], Any]) -> None:
    """422 unless `base_model` is None (the kind's default) or a model id `resolve` knows for
    this kind; `resolve(model_id, model_kind)` raises UnknownModel listing the choices."""
    if base_model is None:
        return
    shown = _UNPRINTABLE.sub("?", base_model)[:100]
    model_kind = BASE_MODEL_KIND.get(kind)
    if model_kind is None:
        raise Invalid(f"A {kind} job trains from scratch: leave base_model out (it was '{shown}').")
    try:
        resolve(base_model, model_kind)
    except UnknownModel as exc:
        choices = ", ".join(exc.available) or "none yet"
        raise Invalid(
            f"Unknown base model '{shown}' for a {kind} job. Choose one of the {model_kind} models: "
            f"{choices}.",
            code="unknown_model",
        ) from None
