"""Trained starters: small models the studio's own trainers pretrained on data the project writes
itself (procedural stories, the shapes world), shipped in `assets/starter/<name>/` so that offline the
studio makes real things on the first click, with no download and no training at start.

Each shipped folder is a normal `from_pretrained` folder plus `card.json` (what it was trained on,
for how long, and its measured quality) and a README.md model card. `python -m engines.starter build`
rebuilds them (engines/starter/build.py).

Which starters a registry lists: the trained starter of a kind when it is shipped, else the tiny
random-weight one (engines/starter/__init__.py). With `AIGC_STUDIO_TINY_STARTERS=1` in the
environment (the test suite's fixtures, where meaning doesn't matter and speed does) the tiny one
comes first and is the default, and the trained one is still listed behind it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from engines import starter as tiny

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "starter"
CARD_FILE = "card.json"
TINY_ENV = "AIGC_STUDIO_TINY_STARTERS"

TRAINED_TEXT = "starter/gpt2-stories"
TRAINED_IMAGE = "starter/sd-shapes"
# The starter voice (engines/starter/build_speech.py): a SpeechT5 trained on espeak-ng's speech, the base a
# `speech-finetune` job starts from; listed after the classic engine, which stays the default voice
TRAINED_SPEECH_VOICE = "starter/speecht5-espeak"
TRAINED_IDS: dict[str, str] = {"text": TRAINED_TEXT, "image": TRAINED_IMAGE, "speech": TRAINED_SPEECH_VOICE}
# A classic engine that needs no training: espeak-ng's formant synthesis (engines/speech/espeak.py),
# listed for speech before the random-weight VITS starter (which stays listed, labelled random weights).
CLASSIC_SPEECH = "starter/espeak-ng"
CLASSIC_IDS: dict[str, str] = {"speech": CLASSIC_SPEECH}

_REQUIRED: dict[str, tuple[str, ...]] = {
    TRAINED_TEXT: ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"),
    TRAINED_IMAGE: (
        "model_index.json",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
        "tokenizer/tokenizer_config.json",
        "scheduler/scheduler_config.json",
    ),
    TRAINED_SPEECH_VOICE: ("config.json", "model.safetensors", "spm_char.model", "voices/default.npy", "vocoder.json"),
    CLASSIC_SPEECH: ("config.json",),  # {"model_type": "espeak-ng"}: the library comes from espeakng-loader
}


def shipped_path(model_id: str, root: Path | None = None) -> Path:
    if model_id not in _REQUIRED:
        raise KeyError(f"not a trained starter: {model_id!r} (known: {sorted(_REQUIRED)})")
    return (root or ASSETS) / model_id.split("/", 1)[1]


def is_shipped(model_id: str, root: Path | None = None) -> bool:
    """Whether the trained starter's folder is complete: its card (written last) and its weights."""
    if model_id == CLASSIC_SPEECH:
        from engines.speech import espeak

        if not espeak.available():
            return False
    folder = shipped_path(model_id, root)
    return (folder / CARD_FILE).is_file() and all((folder / rel).is_file() for rel in _REQUIRED[model_id])


def read_card(model_id: str, root: Path | None = None) -> dict[str, Any] | None:
    """The starter's card (training recipe and measured numbers), None when it isn't shipped."""
    try:
        card = json.loads((shipped_path(model_id, root) / CARD_FILE).read_text(encoding="utf-8"))
    except (KeyError, OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def tiny_first() -> bool:
    return os.environ.get(TINY_ENV, "").strip().lower() in ("1", "true", "yes")


def listed_starters(kind: str) -> list[str]:
    """The starter ids a registry lists for `kind`, its preferred one first."""
    random_id = tiny.STARTER_IDS.get(kind)
    trained_id = TRAINED_IDS.get(kind)
    trained = [trained_id] if trained_id and is_shipped(trained_id) else []
    classic_id = CLASSIC_IDS.get(kind)
    classic = [classic_id] if classic_id and is_shipped(classic_id) else []
    if tiny_first():
        return [i for i in (random_id, *trained, *classic) if i]
    if classic:  # the classic engine speaks first; the trained voice and the random starter stay listed (to train from)
        return [*classic, *trained, *([random_id] if random_id else [])]
    return trained or ([random_id] if random_id else [])


def is_trained_starter(model_id: str) -> bool:
    """A starter shipped ready to use (trained, or the classic espeak-ng engine): not random weights."""
    return model_id in _REQUIRED


def all_starter_ids() -> set[str]:
    return set(tiny.STARTER_IDS.values()) | set(_REQUIRED)
