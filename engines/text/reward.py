"""A trained reward model as a judge: scores (prompt + answer) texts, higher = more preferred.
Used by best-of-n generation; trained by the `reward` job (engines/text/reward_train.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any


def score_texts(model: Any, tokenizer: Any, texts: list[str], max_length: int = 256, batch: int = 16) -> list[float]:
    """One score per text (the model's single logit), in batches, without gradients."""
    import torch

    scores: list[float] = []
    device = next(model.parameters()).device
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = tokenizer(texts[i:i + batch], return_tensors="pt", padding=True, truncation=True,
                            max_length=max_length).to(device)
            logits = model(**enc).logits  # (b, 1)
            scores.extend(float(v) for v in logits[:, 0].float())
    return scores


class RewardEngine:
    def __init__(self, location: str | Path, device: str = "cpu"):
        self.location = str(location)
        self.device = device
        self.model: Any = None
        self.tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> RewardEngine:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if self.model is None:
            self.tokenizer = AutoTokenizer.from_pretrained(self.location)
            if self.tokenizer.pad_token is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token
            # Padding on the right: a GPT-2-style classifier reads the last non-pad token of each row.
            self.tokenizer.padding_side = "right"
            model = AutoModelForSequenceClassification.from_pretrained(self.location, num_labels=1)
            model.config.pad_token_id = self.tokenizer.pad_token_id
            self.model = model.to(self.device).eval()
        return self

    def size_bytes(self) -> int:
        from engines.memory import module_bytes

        return module_bytes(self.model) if self.model is not None else 0

    def score(self, prompt: str, answers: list[str]) -> list[float]:
        self.load()
        with self._lock:
            return score_texts(self.model, self.tokenizer, [prompt + a for a in answers])
