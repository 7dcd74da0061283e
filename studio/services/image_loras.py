"""Several image LoRAs in one request: the `lora` field, the `loras` list and the prompt's
`<lora:ID_OR_NAME:w>` tags (read by engines/image/prompts.py), resolved to rows of one base model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engines.image.prompts import split_lora_tags
from studio.services.errors import Invalid

MAX_LORAS = 8


class LoraWeight(BaseModel):
    """One LoRA of several applied at once."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., min_length=1, max_length=200, description="id or name of an image LoRA (GET /models → image_loras)")
    scale: float = Field(1.0, ge=0, le=2)


def resolve_loras(params: Any, resolve: Callable, lora_row: Callable) -> tuple[Any, list[tuple[Any, float]], str]:
    """(spec, [(LoRA row, scale)], prompt without its tags): `lora`, then `loras`, then the prompt's
    tags, all on one base model. `resolve(model, lora)` → (spec, row) is ImageService.resolve and
    `lora_row(id_or_name)` its lookup (404 for an unknown LoRA); a mismatch is a 422."""
    prompt, tags = split_lora_tags(params.prompt)
    for name, scale in tags:
        if not 0 <= scale <= 2:
            raise Invalid(f"prompt: <lora:{name}:{scale}> — a LoRA weight is between 0 and 2.")
    wanted = (([(params.lora, params.lora_scale)] if params.lora else [])
              + [(item.id, item.scale) for item in params.loras] + tags)
    if len(wanted) > MAX_LORAS:
        raise Invalid(f"loras: at most {MAX_LORAS} LoRAs at once (this asks for {len(wanted)}).")
    spec, first = resolve(params.model, wanted[0][0] if wanted else None)
    if not wanted:  # the default version may carry a LoRA
        return spec, ([(first, params.lora_scale)] if first is not None else []), prompt
    rows: list[tuple[Any, float]] = []
    for i, (name, scale) in enumerate(wanted):
        row = first if i == 0 and first is not None else lora_row(name)
        if row["base_model"] != spec.id:
            raise Invalid(f"LoRA '{name}' was trained on '{row['base_model']}', not '{spec.id}'. "
                          "Use LoRAs of one base model together.")
        if any(r["id"] == row["id"] for r, _ in rows):
            raise Invalid(f"LoRA '{name}' is asked for twice; give each LoRA once.")
        rows.append((row, scale))
    return spec, rows, prompt
