"""What an export holds and leaves out, said once: written into the zip (EXPORT.md + version.json)
and shown beside the download, so a person knows what they are taking away and how to load it."""

from __future__ import annotations

import json
from typing import Any

from studio.services.version_names import version_title

# row type → (what the zip holds, how to load it, what it leaves out)
CONTENTS: dict[str, tuple[str, str, str]] = {
    "text_adapter": (
        "the LoRA weights (`adapter_model.safetensors`) and `adapter_config.json`",
        "`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), folder)`",
        "the base model (load it by its id, BASE), the optimizer state and the training checkpoints",
    ),
    "image_lora": (
        "the UNet's LoRA weights (safetensors) and their config",
        "`StableDiffusionPipeline.from_pretrained(BASE).load_lora_weights(folder)`",
        "the base pipeline (BASE), the optimizer state and the training checkpoints",
    ),
    "text_model": (
        "the whole model: weights (safetensors), `config.json`, the tokenizer and generation settings",
        "`AutoModelForCausalLM.from_pretrained(folder)`",
        "the optimizer state and the training checkpoints",
    ),
    "image_model": (
        "the whole pipeline folder: UNet, VAE, text encoder, tokenizer and scheduler (safetensors)",
        "`StableDiffusionPipeline.from_pretrained(folder)`",
        "the optimizer state, the training checkpoints and the sample grids",
    ),
    "speech_model": (
        "the whole voice: SpeechT5 weights (safetensors), `config.json`, the character tokenizer, the mel "
        "settings and the speaker vector (`voices/default.npy`)",
        "`SpeechT5ForTextToSpeech.from_pretrained(folder)` with `SpeechT5Processor.from_pretrained(folder)`",
        "the optimizer state, the training checkpoints and the spoken samples",
    ),
    "reward_model": (
        "the reward model's weights (safetensors), config and tokenizer",
        "`AutoModelForSequenceClassification.from_pretrained(folder)` (on its base, BASE, for a LoRA head)",
        "the ratings it learnt from (export them from the Feedback tab) and the training checkpoints",
    ),
}
MERGED = (
    "the base model with the adapter folded into its weights: weights (safetensors, in PRECISION), "
    "`config.json` and the tokenizer",
    "`AutoModelForCausalLM.from_pretrained(folder)` — no peft needed",
    "the separate adapter (export it on its own to keep switching it), the optimizer state and the checkpoints",
)


def _fill(text: str, row: dict[str, Any], precision: str = "") -> str:
    return text.replace("BASE", f"`{row.get('base_model') or '?'}`").replace("PRECISION", precision)


def describe(row: dict[str, Any], *, merged: bool = False, precision: str = "fp32") -> str:
    """Markdown: the version the zip carries, what it holds, how to load it, what it leaves out."""
    holds, load, leaves = MERGED if merged else CONTENTS.get(row.get("type", ""), CONTENTS["text_model"])
    return (f"**{version_title(row)}**" + (" (merged)" if merged else "") + "\n\n"
            f"- Holds: {_fill(holds, row, precision)}, plus `version.json` (this version's name, kind, base "
            "and training settings) and this note as `EXPORT.md`.\n"
            f"- Loads with: {_fill(load, row)}.\n"
            f"- Leaves out: {_fill(leaves, row)}.\n")


def version_file(row: dict[str, Any], *, merged: bool = False, precision: str | None = None) -> str:
    """version.json: what the export is, for whoever opens it later."""
    meta = row.get("meta") or {}
    if isinstance(meta, str):
        meta = json.loads(meta or "{}")
    return json.dumps({
        "id": row.get("id"), "name": row.get("name"), "title": version_title({**row, "meta": meta}),
        "type": row.get("type"), "base_model": row.get("base_model"), "job_id": row.get("job_id"),
        "created_at": row.get("created_at"), "merged": merged, "precision": precision,
        "kind": meta.get("kind"), "params": meta.get("params"), "metrics": meta.get("metrics"),
    }, indent=2, default=str)
