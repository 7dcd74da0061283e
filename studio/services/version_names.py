"""Trained versions carry the name their creator chose in the training form; everywhere they are
shown as `name · kind · steps · date` (`version_title`), ids only in details.

The chosen name travels with the job in its run folder (`name.txt`, written when the job is created)
until the finished artifact's row takes it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studio.services.errors import Invalid

NAME_FILE = "name.txt"
MAX_NAME = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# How an artifact's type reads when its job kind is unknown (imported, mixed).
TYPE_WORDS = {"text_adapter": "adapter", "text_model": "full fine-tune", "image_lora": "LoRA",
              "image_model": "image model", "gan": "gan", "reward_model": "reward model",
              "speech_model": "voice"}
KIND_WORDS = {"text-lora": "text", "text-feedback": "from ratings", "image-lora": "LoRA",
              "image-scratch": "image from scratch", "reward": "reward model",
              "speech-finetune": "voice"}


def default_name(dataset_name: str | None, kind: str | None, when: datetime | None = None) -> str:
    """What the training form proposes: dataset + kind + date, e.g. `foxes · text-lora · 2026-12-01`."""
    day = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M")
    return " · ".join(part for part in (dataset_name, kind, day) if part)


def check_name(name: Any) -> str | None:
    """A chosen name, stripped; None for an empty one (the trainer's own name is used)."""
    if name is None:
        return None
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise Invalid(f"'name' must be text of at most {MAX_NAME} characters.", code="invalid_field")
    name = _CONTROL.sub("", name).strip()
    return name or None


def write_name(run_folder: Path, name: str | None) -> None:
    if name:
        (run_folder / NAME_FILE).write_text(name, encoding="utf-8")


def read_name(run_folder: Path) -> str | None:
    try:
        return check_name((run_folder / NAME_FILE).read_text(encoding="utf-8"))
    except (OSError, Invalid):
        return None


def version_title(row: dict[str, Any]) -> str:
    """`name · kind · steps · date` of a trained, imported or mixed version (an adapters row, its
    meta decoded): what lists, pickers and tables show."""
    meta = row.get("meta") or {}
    kind = meta.get("kind")
    kind_word = KIND_WORDS.get(kind, kind) if kind else TYPE_WORDS.get(row.get("type", ""), row.get("type") or "")
    if row.get("type") == "text_model":
        kind_word = "full fine-tune"
    metrics = meta.get("metrics") or {}
    steps = metrics.get("step") or (meta.get("params") or {}).get("max_steps")
    parts = [row.get("name") or row.get("id", "?"), kind_word]
    if steps:
        parts.append(f"{int(steps):,} steps")
    if row.get("created_at"):
        parts.append(str(row["created_at"])[:16].replace("T", " "))
    return " · ".join(p for p in parts if p)
