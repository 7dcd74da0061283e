"""Prompt syntax of AUTOMATIC1111's web UI, read once for every door: `<lora:NAME:0.8>` tags and
attention weights `(word:1.3)`, `(word)` (× 1.1), `[word]` (÷ 1.1), `\\(` for a literal bracket.

Weighted prompts are encoded by `compel` (the maintained library for prompt weighting in
diffusers). compel 2.5 works with transformers 5 / diffusers 0.42 and the tiny starter CLIP
(a prompt with no weights encodes to exactly what the pipeline's own `encode_prompt` gives), but
its parser reads compel's own syntax (`(word)1.3`, `word+`), not A1111's: `(red:1.5)` comes out
as the literal text "red:1 . 5". The smallest fix is to split A1111's syntax here (the same
algorithm as A1111's `parse_prompt_attention`) and hand compel the (text, weight) fragments as
its own `FlattenedPrompt`, skipping its text parser. A prompt without weighting syntax never
goes through compel: the pipeline encodes it as before, so old seeds give the same pixels.
"""

from __future__ import annotations

import re
from typing import Any

LORA_TAG = re.compile(r"<lora:([^:>]+)(?::\s*([+-]?[0-9]*\.?[0-9]+))?\s*>")

# A1111 modules/prompt_parser.py `re_attention`: escapes, brackets, a `:weight)` closer, plain text.
_ATTENTION = re.compile(r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")
_WEIGHTING = re.compile(r"(?<!\\)[()\[\]]")
ROUND, SQUARE = 1.1, 1 / 1.1


def split_lora_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """(prompt without its `<lora:…>` tags, [(id or name, weight), …] in order; weight 1 when omitted)."""
    tags = [(name.strip(), float(weight) if weight else 1.0) for name, weight in LORA_TAG.findall(prompt)]
    if not tags:
        return prompt, []
    return re.sub(r"\s{2,}", " ", LORA_TAG.sub("", prompt)).strip(" ,"), tags


def has_weighting(prompt: str | None) -> bool:
    """Whether the prompt uses attention syntax (an unescaped bracket)."""
    return bool(prompt) and _WEIGHTING.search(prompt) is not None


def parse_attention(text: str) -> list[tuple[str, float]]:
    """A1111's reading of attention syntax: [(text, weight), …], neighbours of equal weight merged.

    >>> parse_attention("a (red:1.5) [square]")
    [('a ', 1.0), ('red', 1.5), (' ', 1.0), ('square', 0.9090909090909091)]
    """
    res: list[list[Any]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for item in res[start:]:
            item[1] *= factor

    for m in _ATTENTION.finditer(text):
        token, weight = m.group(0), m.group(1)
        if token.startswith("\\"):
            res.append([token[1:], 1.0])
        elif token == "(":
            round_open.append(len(res))
        elif token == "[":
            square_open.append(len(res))
        elif weight is not None and round_open:
            multiply(round_open.pop(), float(weight))
        elif token == ")" and round_open:
            multiply(round_open.pop(), ROUND)
        elif token == "]" and square_open:
            multiply(square_open.pop(), SQUARE)
        else:
            res.append([token, 1.0])
    for start in round_open:  # unclosed brackets weigh to the end, as in A1111
        multiply(start, ROUND)
    for start in square_open:
        multiply(start, SQUARE)
    merged: list[list[Any]] = []
    for item in res:
        if merged and merged[-1][1] == item[1]:
            merged[-1][0] += item[0]
        else:
            merged.append(item)
    return [(t, w) for t, w in merged] or [("", 1.0)]


def weighted_embeds(pipe, prompt: str, negative_prompt: str | None, guidance: bool) -> dict[str, Any]:
    """Pipeline keywords for the prompts: `prompt_embeds`/`negative_prompt_embeds` (through compel) for
    a prompt with weighting syntax, the plain strings otherwise (the pipeline encodes those itself)."""
    weighted, weighted_negative = has_weighting(prompt), guidance and has_weighting(negative_prompt)
    if not (weighted or weighted_negative):
        return {"prompt": prompt, "negative_prompt": negative_prompt or None}
    from compel import Compel
    from compel.prompt_parser import Conjunction, FlattenedPrompt

    compel = Compel(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, device=pipe._execution_device,
                    dtype_for_device_getter=lambda _device: pipe.text_encoder.dtype)

    def encode(text: str):
        conjunction = Conjunction([FlattenedPrompt(parse_attention(text))])
        return compel.build_conditioning_tensor_for_conjunction(conjunction)[0]  # (1, 77, dim)

    out: dict[str, Any] = {"prompt_embeds": encode(prompt)}
    if guidance:  # both sides through compel: same length, and a plain side encodes as the pipeline would
        out["negative_prompt_embeds"] = encode(negative_prompt or "")
    return out
