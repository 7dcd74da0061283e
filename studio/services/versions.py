"""A version is a model, or a model with a variant on it: an adapter (text), a LoRA (image), or in
the arena a voice (speech). Its label — `model` or `model+variant` — is how the arena,
experiments, the feedback dashboard, an admin's default and the OpenAI dialect's `model` field
name it; this module is the one place that writes and reads it."""

from __future__ import annotations

# The adapter lists of `ModelService.list_models()` whose entries make versions of a kind.
ADAPTER_LISTS = {"text": "text_adapters", "image": "image_loras"}


def version_label(model: str, variant: str | None = None) -> str:
    """`model`, or `model+variant` when an adapter, LoRA or voice is on it."""
    return f"{model}+{variant}" if variant else model


def parse_version(label: str) -> tuple[str, str | None]:
    """`model` or `model+variant` → (model, variant or None)."""
    model, _, variant = label.partition("+")
    return model, variant or None


def versions_in(listing: dict, kind: str) -> list[str]:
    """Every version of `kind` in a `list_models()` listing: its models, then each adapter on its base."""
    labels = [m["id"] for m in listing.get(kind, [])]
    extra = ADAPTER_LISTS.get(kind)
    if extra:
        labels += [version_label(a["base_model"], a["id"]) for a in listing[extra]]
    return labels
