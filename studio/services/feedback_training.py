"""Turning ratings into a better model: gathers the thumbs and A/B votes given to one text
version (base model + adapter) and hands them to a `text-feedback` job as its inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from studio.services.errors import Invalid
from studio.services.feedback import dpo_pairs, kto_rows, rated_outputs
from studio.services.text import TextService
from studio.services.versions import version_label
from studio.store import Store
from studio.store import adapters as adapter_rows


class FeedbackTrainingService:
    def __init__(self, store: Store, text: TextService, data_dir: Path):
        self.store = store
        self.text = text
        self.data_dir = data_dir

    def examples(self, model: str, adapter: str | None) -> tuple[list[dict], list[dict]]:
        """(KTO rows from thumbs on this version's outputs, DPO pairs from votes involving it):
        the same queries as the feedback export, narrowed to one version."""
        version = (model, adapter)
        return kto_rows(rated_outputs(self.store, version=version)), dpo_pairs(self.store, version=version)

    def summary(self, model: str | None, adapter: str | None) -> dict:
        spec, _ = self.text.resolve(model, adapter)
        preferences, pairs = self.examples(spec.id, adapter)
        up = sum(p["label"] for p in preferences)
        return {"model": spec.id, "adapter": adapter, "ratings": len(preferences), "up": up,
                "down": len(preferences) - up, "pairs": len(pairs)}

    def newest_tuned(self) -> tuple[str, str] | None:
        """(the newest feedback-tuned version, the version it was tuned from) as `model+adapter` labels —
        the pair to compare next; None before the first `text-feedback` job has finished."""
        row = adapter_rows.newest_made_by(self.store, "text-feedback")
        if row is None:
            return None
        parent = json.loads(row["params"]).get("adapter") or None
        return version_label(row["base_model"], row["id"]), version_label(row["base_model"], parent)

    def prepare(self, base_model: str | None, params: dict[str, Any], run_folder: Path) -> str:
        """The `text-feedback` preparer: refuse early with a clear message, else write the inputs."""
        from engines.text.feedback_train import TextFeedbackConfig, choose_method

        adapter = params.get("adapter") or None
        spec, adapter_row = self.text.resolve(base_model, adapter)
        preferences, pairs = self.examples(spec.id, adapter)
        config = TextFeedbackConfig(**{k: v for k, v in params.items() if k in TextFeedbackConfig.__dataclass_fields__})
        try:
            method = choose_method(config, preferences, pairs)
        except ValueError as exc:
            version = f"{spec.id} + {adapter}" if adapter else spec.id
            raise Invalid(f"Cannot tune {version} from feedback yet: {exc} Rate more of its outputs in the Text "
                          "tab (or vote in the Arena) and try again.", code="not_enough_feedback") from exc
        name = adapter_row["name"] if adapter_row is not None else spec.id
        inputs = write_inputs(run_folder, preferences, pairs,
                              {"base_model": spec.id, "adapter": adapter, "name": name, "method": method})
        if adapter_row is not None:
            shutil.copytree(self.data_dir / adapter_row["path"], inputs / "adapter")
        return spec.id

    def prepare_reward(self, base_model: str | None, params: dict[str, Any], run_folder: Path) -> str:
        """The `reward` preparer: every text output's thumbs and every voted text comparison become
        the judge's examples; refused early, with the fix, when they cannot teach it anything."""
        from engines.text.reward_train import RewardConfig, check_ratings

        spec, _ = self.text.resolve(base_model, None)
        preferences, pairs = kto_rows(rated_outputs(self.store)), dpo_pairs(self.store)
        config = RewardConfig(**{k: v for k, v in params.items() if k in RewardConfig.__dataclass_fields__})
        try:
            check_ratings(config, preferences, pairs)
        except ValueError as exc:
            raise Invalid(f"Cannot train a reward model yet: {exc} Rate more text outputs (both 👍 and 👎) or "
                          "vote in the Arena, then try again.", code="not_enough_feedback") from exc
        write_inputs(run_folder, preferences, pairs, {"base_model": spec.id, "name": "text ratings"})
        return spec.id


def write_inputs(run_folder: Path, preferences: list[dict], pairs: list[dict], about: dict) -> Path:
    """A ratings job's inputs/ folder: thumbs as preferences.jsonl, votes as pairs.jsonl, and inputs.json."""
    inputs = run_folder / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for name, rows in (("preferences.jsonl", preferences), ("pairs.jsonl", pairs)):
        (inputs / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (inputs / "inputs.json").write_text(json.dumps(about), encoding="utf-8")
    return inputs
