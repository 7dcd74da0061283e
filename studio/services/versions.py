"""A version is a model, or a model with an adapter (LoRA) on it. Its label — `model` or
`model+adapter` — is how the arena, experiments, the feedback dashboard, an admin's default and
the OpenAI dialect's `model` field name it; this module is the one place that writes and reads it."""

from __future__ import annotations

# The adapter lists of `ModelService.list_models()` whose entries make versions of a kind.
ADAPTER_LISTS = {"text": "text_adapters", "image": "image_loras"}


def version_label(model: str, adapter: str | None = None) -> str:
    """`model`, or `model+adapter` when an adapter is on it."""
    return f"{model}+{adapter}" if adapter else model


def parse_version(label: str) -> tuple[str, str | None]:
    """`model` or `model+adapter` → (model, adapter or None)."""
    model, _, adapter = label.partition("+")
    return model, adapter or None


def versions_in(listing: dict, kind: str) -> list[str]:
    """Every version of `kind` in a `list_models()` listing: its models, then each adapter on its base."""
    labels = [m["id"] for m in listing.get(kind, [])]
    extra = ADAPTER_LISTS.get(kind)
    if extra:
        labels += [version_label(a["base_model"], a["id"]) for a in listing[extra]]
    return labels
