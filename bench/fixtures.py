"""Models and datasets the benchmarks run on, built locally (no hub) once per run in the work dir."""

from __future__ import annotations

import json
from pathlib import Path

from bench.core import REPO, Context

CORPUS = REPO / "assets" / "starter" / "corpus.txt"
SEED = 1234


def starter(ctx: Context, kind: str) -> Path:
    """The starter model of `kind` (text, image, speech) in the run's data dir."""
    from engines.starter import STARTER_IDS, ensure_starter

    return ensure_starter(STARTER_IDS[kind], ctx.data_dir / "models")


def gpt2_sized(ctx: Context) -> Path:
    """GPT-2 small's shape (GPT2Config defaults: 12 layers, 768 wide, 50257 tokens, 124M weights) with
    seeded random weights, and the starter's tokenizer (whose ids all fall inside the vocabulary)."""
    folder = ctx.work_dir / "gpt2-random"
    if (folder / "done").is_file():
        return folder
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(starter(ctx, "text"))
    eot = tokenizer.eos_token_id
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = GPT2LMHeadModel(GPT2Config(bos_token_id=eot, eos_token_id=eot, pad_token_id=eot)).eval()
    model.generation_config.pad_token_id = eot
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "done").write_text("ok\n", encoding="utf-8")
    return folder


def corpus_paragraphs() -> list[str]:
    return [p.strip() for p in CORPUS.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 40]


def text_dataset(ctx: Context) -> Path:
    """A studio text dataset folder (data.jsonl of {"text"} rows + manifest.json) from the corpus."""
    folder = ctx.data_dir / "datasets" / "bench_text"
    if not (folder / "data.jsonl").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        rows = "".join(json.dumps({"text": p}) + "\n" for p in corpus_paragraphs())
        (folder / "data.jsonl").write_text(rows, encoding="utf-8")
        (folder / "manifest.json").write_text(json.dumps({"name": "bench corpus", "kind": "text"}), encoding="utf-8")
    return folder


def image_dataset(ctx: Context, n: int = 256) -> Path:
    """A studio image dataset folder: the procedural GAN demo shapes."""
    from engines.gan.demo_data import write_demo_folder

    folder = ctx.data_dir / "datasets" / "bench_shapes"
    if not (folder / "manifest.json").is_file():
        write_demo_folder(folder, n=n, seed=0)
        (folder / "manifest.json").write_text(json.dumps({"name": "bench shapes", "kind": "image"}), encoding="utf-8")
    return folder
