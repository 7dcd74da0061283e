"""Quality measures of a text model that mean something offline: held-out perplexity, and the share
of generated words that are English words. Used by the starter build (its model card), the tests and
the bench.

"English words" are the words of a vocabulary the caller gives — by default the words the studio's
own story corpus can contain (the procedural grammar's vocabulary and the bundled stories), which is
what a starter trained on it should write. No word list is downloaded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")

# Fresh prompts: openings of the kind a newcomer types, none copied from the training stories.
PROMPTS: tuple[str, ...] = (
    "Once upon a time",
    "The little dog",
    "One morning, a girl named",
    "In the middle of the forest",
    "The old man looked at",
    "When the rain stopped,",
    "My best friend",
    "The baker opened the door and",
    "It was a cold night, and",
    "The children ran to the",
    "A small bird",
    "After lunch, the family",
    "Tom wanted to",
    "The teacher said",
    "Under the bridge there was",
    "Every day, the farmer",
    "The boat",
    "She picked up the",
    "At the end of the street",
    "The king and the queen",
)


def words(text: str) -> list[str]:
    """The words of `text`, lowercased (letters, with an inner apostrophe: "don't")."""
    return [w.lower() for w in _WORD.findall(text)]


def english_share(texts: Iterable[str], vocabulary: set[str]) -> tuple[float, int]:
    """(share of the words of `texts` found in `vocabulary`, number of words). A word with an
    apostrophe counts when it or its stem is known ("mia's", "don't")."""
    total = known = 0
    for text in texts:
        for w in words(text):
            total += 1
            stem = w.split("'", 1)[0]
            known += w in vocabulary or stem in vocabulary
    return (known / total if total else 0.0), total


def default_vocabulary() -> set[str]:
    from engines.starter.corpus import vocabulary

    return vocabulary()


def perplexity(model: Any, tokenizer: Any, texts: Sequence[str], block_size: int = 128) -> float:
    """Token-level perplexity of `texts` (joined with EOS, cut into blocks) under `model`."""
    nll, count = scored_nll(model, tokenizer, texts, block_size)
    return math.exp(nll / count) if count else float("nan")


def scored_nll(model: Any, tokenizer: Any, texts: Sequence[str], block_size: int = 128) -> tuple[float, int]:
    """(summed negative log-likelihood in nats, tokens scored) of `texts` joined with EOS and cut into
    blocks of `block_size`; each block's first token has no context and is not scored."""
    import torch

    eos = tokenizer.eos_token or ""
    ids = tokenizer(eos.join(texts), return_attention_mask=False)["input_ids"]
    blocks = [ids[i : i + block_size] for i in range(0, len(ids) - 1, block_size)]
    nll, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for block in blocks:
            if len(block) < 2:
                continue
            x = torch.tensor([block], device=model.device)
            loss = model(input_ids=x, labels=x).loss
            nll += float(loss) * (len(block) - 1)
            count += len(block) - 1
    return nll, count


def generate_samples(engine: Any, prompts: Sequence[str] = PROMPTS, *, max_new_tokens: int = 40,
                     temperature: float = 0.8, seed: int = 0) -> list[str]:
    """The new text (prompt left out) an `engines.text.generate.TextEngine` writes for each prompt."""
    from engines.text.generate import TextGenerationRequest

    out = []
    for i, prompt in enumerate(prompts):
        request = TextGenerationRequest(prompt, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed + i)
        out.append(engine.generate(request).texts[0])
    return out
