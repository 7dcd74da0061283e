"""What a text model thinks of tokens: the log-probability of each generated token with its k most
likely alternatives, and the perplexity of a given text.

Both read the model's own distribution — the softmax of its raw logits — not the distribution that
sampling drew from after temperature, top-k, top-p or the repetition penalty reshaped it (the
convention of OpenAI's `logprobs`). So the numbers describe the model, and for greedy decoding with
no repetition penalty the chosen token is always the first alternative."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]]  # the most likely tokens at this position, most likely first


@dataclass
class TextScore:
    perplexity: float  # exp(mean negative log-likelihood per scored token)
    tokens: int  # tokens of the text
    scored_tokens: int  # tokens whose probability was measured (each block's first token has no context)
    mean_logprob: float  # mean log-probability (nats) per scored token


def generated_logprobs(tokenizer: Any, new, logits, counts: list[int], top: int,
                       texts: list[str] | None = None) -> list[list[TokenLogprob]]:
    """Per output, each kept new token's log-probability under the model and its `top` alternatives.
    `new` (n, steps) holds the generated ids, `logits` one (n, vocab) tensor per step, `counts` the kept
    tokens per output. `texts`: the outputs' final texts — an output cut at a stop string keeps only the
    tokens that make up its text (the one the cut fell inside included)."""
    import torch

    steps = torch.stack(logits, dim=1).float().log_softmax(-1)  # (n, steps, vocab)
    decode = tokenizer.decode
    result = []
    for i, count in enumerate(counts):
        count = min(count, steps.shape[1])
        if texts is not None:
            count = _covering(tokenizer, new[i, :count].tolist(), texts[i])
        alt = steps[i, :count].topk(top, dim=-1) if top else None  # values, ids: (count, top)
        tokens = []
        for t in range(count):
            token_id = int(new[i, t])
            tokens.append(TokenLogprob(
                token=decode([token_id]), logprob=float(steps[i, t, token_id]),
                top=[] if alt is None else [(decode([int(k)]), float(v))
                                            for v, k in zip(alt.values[t], alt.indices[t], strict=True)],
            ))
        result.append(tokens)
    return result


def _covering(tokenizer: Any, ids: list[int], text: str) -> int:
    """The fewest leading `ids` whose decoded text covers `text` (all of them when it is not shorter)."""
    if len(tokenizer.decode(ids, skip_special_tokens=True)) <= len(text):
        return len(ids)
    for m in range(len(ids) + 1):
        if len(tokenizer.decode(ids[:m], skip_special_tokens=True)) >= len(text):
            return m
    return len(ids)


def score_text(model: Any, tokenizer: Any, text: str, block_size: int) -> TextScore:
    """Perplexity of `text` under `model`, read in blocks of the model's context (engines/text/quality.py)."""
    import math

    from engines.text.quality import scored_nll

    tokens = len(tokenizer(text, return_attention_mask=False)["input_ids"])
    nll, count = scored_nll(model, tokenizer, [text], block_size=block_size)
    if not count:
        raise ValueError("the text needs at least two tokens to be scored")
    return TextScore(perplexity=math.exp(nll / count), tokens=tokens, scored_tokens=count,
                     mean_logprob=-nll / count)
