"""Turning ratings into a better model: gathers the thumbs and A/B votes given to one text
version (base model + adapter) and hands them to a `text-feedback` job as its inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from studio.services.errors import Invalid
from studio.services.text import TextService
from studio.store import Store


class FeedbackTrainingService:
    def __init__(self, store: Store, text: TextService, data_dir: Path):
        self.store = store
        self.text = text
        self.data_dir = data_dir

    def examples(self, model: str, adapter: str | None) -> tuple[list[dict], list[dict]]:
        """(KTO rows from thumbs on this version's outputs, DPO pairs from votes involving it)."""
        same_adapter = "o.adapter IS ?"
        rows = self.store.query(
            "SELECT o.prompt, o.text, r.rating FROM ratings r JOIN outputs o ON o.id = r.output_id "
            f"WHERE o.kind = 'text' AND o.model = ? AND {same_adapter} ORDER BY r.updated_at",
            (model, adapter),
        )
        preferences = [{"prompt": r["prompt"], "completion": r["text"], "label": r["rating"] == "up"} for r in rows]
        votes = self.store.query(
            "SELECT c.prompt, c.winner, a.text AS a_text, b.text AS b_text FROM comparisons c "
            "JOIN outputs a ON a.id = c.a_output_id JOIN outputs b ON b.id = c.b_output_id "
            "WHERE c.kind = 'text' AND c.winner IN ('a', 'b') AND ((a.model = ? AND a.adapter IS ?) "
            "OR (b.model = ? AND b.adapter IS ?))",
            (model, adapter, model, adapter),
        )
        pairs = [
            {"prompt": v["prompt"],
             "chosen": v["a_text"] if v["winner"] == "a" else v["b_text"],
             "rejected": v["b_text"] if v["winner"] == "a" else v["a_text"]}
            for v in votes
        ]
        return preferences, pairs

    def summary(self, model: str | None, adapter: str | None) -> dict:
        spec, _ = self.text.resolve(model, adapter)
        preferences, pairs = self.examples(spec.id, adapter)
        up = sum(p["label"] for p in preferences)
        return {"model": spec.id, "adapter": adapter, "ratings": len(preferences), "up": up,
                "down": len(preferences) - up, "pairs": len(pairs)}

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
        inputs = run_folder / "inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        for name, rows in (("preferences.jsonl", preferences), ("pairs.jsonl", pairs)):
            (inputs / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                       encoding="utf-8")
        name = adapter_row["name"] if adapter_row is not None else spec.id
        (inputs / "inputs.json").write_text(json.dumps({"base_model": spec.id, "adapter": adapter, "name": name,
                                                        "method": method}), encoding="utf-8")
        if adapter_row is not None:
            shutil.copytree(self.data_dir / adapter_row["path"], inputs / "adapter")
        return spec.id
