"""The `text-lora` trainer's data: dataset rows, a seeded held-out split, examples (packed documents,
or prompt + completion with the loss on the completion only), padding, and the micro-batches of a
step — which depend only on (seed, step), so resume never repeats or skips a batch.

Nothing here imports the studio.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

Example = tuple[list[int], list[int]]  # (input_ids, labels); -100 labels carry no loss


def read_rows(dataset_path: Path) -> tuple[list[dict[str, str]], str]:
    """The dataset's rows and its format: 'documents' or 'prompt_completion'."""
    rows = []
    with open(Path(dataset_path) / "data.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    if not rows:
        raise ValueError("The dataset has no rows.")
    fmt = "prompt_completion" if "completion" in rows[0] else "documents"
    return rows, fmt


def split_rows(rows: list[Any], eval_fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """A seeded split by row (never inside a document): (train, held_out)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = math.ceil(len(rows) * eval_fraction) if eval_fraction > 0 and len(rows) > 1 else 0
    n_eval = min(n_eval, len(rows) - 1)
    held = sorted(order[:n_eval])
    train = sorted(order[n_eval:])
    return [rows[i] for i in train], [rows[i] for i in held]


def pack_documents(token_lists: list[list[int]], eos_id: int, block_size: int) -> list[Example]:
    """Join documents with EOS and cut into block_size blocks; a short remainder is kept only if alone."""
    stream: list[int] = []
    for ids in token_lists:
        stream.extend(ids)
        stream.append(eos_id)
    blocks = [stream[i : i + block_size] for i in range(0, len(stream), block_size)]
    if len(blocks) > 1 and len(blocks[-1]) < block_size:
        blocks.pop()  # a ragged tail would be the only padded block
    return [(b, list(b)) for b in blocks if len(b) > 1]


def prompt_completion_example(
    prompt_ids: list[int], completion_ids: list[int], eos_id: int, block_size: int
) -> Example | None:
    """prompt + completion + EOS, loss on the completion only; None if no completion token fits."""
    ids = prompt_ids + completion_ids + [eos_id]
    labels = [-100] * len(prompt_ids) + completion_ids + [eos_id]
    ids, labels = ids[:block_size], labels[:block_size]
    if all(label == -100 for label in labels[1:]):
        return None
    return ids, labels


def build_examples(rows: list[dict[str, str]], fmt: str, tokenizer: Any, block_size: int) -> list[Example]:
    eos = tokenizer.eos_token_id
    if fmt == "documents":
        tokens = tokenizer([r["text"] for r in rows], add_special_tokens=False, verbose=False).input_ids
        return pack_documents(tokens, eos, block_size)
    prompts = tokenizer([r["prompt"] for r in rows], add_special_tokens=False, verbose=False).input_ids
    completions = tokenizer(
        [r["completion"] for r in rows], add_special_tokens=False, verbose=False
    ).input_ids
    found = (
        prompt_completion_example(p, c, eos, block_size) for p, c in zip(prompts, completions, strict=True)
    )
    return [e for e in found if e is not None]


def collate(examples: list[Example], pad_id: int) -> dict[str, Any]:
    """Right-pad to the longest: input_ids/attention_mask/labels, each (B, T)."""
    import torch

    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def micro_batch_indices(n: int, batch_size: int, seed: int, micro_index: int) -> list[int]:
    """Indices of micro-batch `micro_index` (0-based, counted over the whole run): a seeded
    permutation per epoch, so the batches of a step depend only on (seed, step)."""
    import torch

    per_epoch = math.ceil(n / batch_size)
    epoch, pos = divmod(micro_index, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    return perm[pos * batch_size : (pos + 1) * batch_size]
