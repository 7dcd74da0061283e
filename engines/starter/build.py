"""`python -m engines.starter build [--kind text|image]`: rebuild the trained starters that ship in
`assets/starter/`, from a seed, with the studio's own trainers (the `text-lora` trainer's `full`
method; the `image-scratch` trainer) on data the project writes itself.

Each build works in a scratch folder laid out like a studio data dir (models/, datasets/, runs/), runs
the trainer as the studio would (`python -m engines.<kind>.train --run-dir …`), then stores the
weights in fp16, measures the result (engines/text/quality.py, engines/shapes/detect.py) and writes
the card (`card.json`, written last, and README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engines import starter as tiny
from engines.starter import shipped
from engines.training.run_dir import JobConfig, write_json_atomic

REPO = Path(__file__).resolve().parents[2]

# The text starter's recipe: a 6-layer GPT-2 (5.9M weights) with a 4,096-token byte-level BPE.
TEXT_RECIPE: dict[str, Any] = {
    "seed": 0,
    "stories": 10000,  # procedural stories (engines/starter/corpus.py), plus the bundled ones
    "held_out_stories": 200,  # generated with another seed, never trained on
    "vocab_size": 4096,
    "n_embd": 256,
    "n_layer": 6,
    "n_head": 8,
    "n_positions": 256,
    "trainer": {
        "method": "full",
        "max_steps": 1500,
        "learning_rate": 1e-3,
        "batch_size": 16,
        "block_size": 128,
        "warmup_steps": 100,
        "lr_scheduler": "cosine",
        "weight_decay": 0.01,
        "eval_fraction": 0.02,
        "save_every": 250,
        "sample_prompt": "Once upon a time",
    },
}


def _run_trainer(kind_module: str, run_dir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Run a trainer module as the studio does; return its result.json."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(run_dir / "train.log", "w", encoding="utf-8") as out:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", kind_module, "--run-dir", str(run_dir)],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env, check=False,
        )  # fmt: skip
    result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    if proc.returncode != 0 or result.get("status") != "completed":
        tail = (run_dir / "train.log").read_text(encoding="utf-8")[-3000:]
        raise RuntimeError(f"{kind_module} ended {result.get('status')}: {result.get('error')}\n{tail}")
    log(f"{kind_module}: completed, metrics {json.dumps(result.get('metrics'), default=str)[:600]}")
    return result


def _work_dir(work: Path | None) -> Path:
    return Path(work) if work else Path(tempfile.mkdtemp(prefix="starter-build-"))


def _story_texts(n: int, seed: int) -> list[str]:
    from engines.starter.corpus import generate_stories

    return generate_stories(n, seed)


def _bundled_stories() -> list[str]:
    """The hand-written stories of assets/starter/corpus.txt, one per title (blank-line separated)."""
    text = tiny.CORPUS_PATH.read_text(encoding="utf-8")
    return [block.strip() for block in text.split("\n\n\n") if block.strip()] or [text]


def build_text(out_root: Path = shipped.ASSETS, *, work: Path | None = None, steps: int | None = None,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Pretrain the text starter and store it in `out_root/gpt2-stories`; return its card."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    recipe = json.loads(json.dumps(TEXT_RECIPE))
    if steps:
        recipe["trainer"]["max_steps"] = steps
    seed = recipe["seed"]
    work = _work_dir(work)
    t_start = time.perf_counter()

    # 1. The corpus: procedural stories and the bundled ones; held-out stories from another seed.
    stories = _story_texts(recipe["stories"], seed) + _bundled_stories()
    held_out = _story_texts(recipe["held_out_stories"], seed + 1_000_003)
    data = work / "datasets" / "stories"
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "data.jsonl", "w", encoding="utf-8") as f:
        for story in stories:
            f.write(json.dumps({"text": story}) + "\n")
    n_words = sum(len(s.split()) for s in stories)
    log(f"corpus: {len(stories)} stories, {n_words:,} words")

    # 2. The tokenizer (byte-level BPE on the corpus) and the random-weight model to pretrain.
    lines = [line for story in stories for line in story.splitlines() if line.strip()]
    with tiny._quiet(), tiny._seeded(seed):
        vocab, merges = tiny._train_gpt2_bpe(recipe["vocab_size"], lines)
        tokenizer = GPT2TokenizerFast(vocab=vocab, merges=merges, bos_token=tiny.EOT, eos_token=tiny.EOT,
                                      unk_token=tiny.EOT, pad_token=tiny.EOT,
                                      model_max_length=recipe["n_positions"])  # fmt: skip
        eos = tokenizer.convert_tokens_to_ids(tiny.EOT)
        config = GPT2Config(vocab_size=len(tokenizer), n_positions=recipe["n_positions"], n_embd=recipe["n_embd"],
                            n_layer=recipe["n_layer"], n_head=recipe["n_head"], bos_token_id=eos,
                            eos_token_id=eos, pad_token_id=eos)  # fmt: skip
        model = GPT2LMHeadModel(config)
        model.generation_config.pad_token_id = eos
        init = work / "models" / "init" / "gpt2-stories"
        model.save_pretrained(init, safe_serialization=True)
        tokenizer.save_pretrained(init)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: GPT-2 {recipe['n_layer']}×{recipe['n_embd']}, {n_params:,} weights, vocab {len(tokenizer)}")

    # 3. Pretrain with the studio's text trainer (`full`).
    run_dir = work / "runs" / "starter-text"
    run_dir.mkdir(parents=True, exist_ok=True)
    job = JobConfig(job_id="starter-text", kind="text-lora", params=recipe["trainer"], base_model="init/gpt2-stories",
                    base_model_path=str(init), dataset_id="stories", dataset_path=str(data),
                    output_dir=str(work / "models" / "trained" / "gpt2-stories"), models_root=str(work / "models"),
                    device="cpu", offline=True)  # fmt: skip
    write_json_atomic(run_dir / "config.json", job.to_dict())
    t_train = time.perf_counter()
    result = _run_trainer("engines.text.train", run_dir, log)
    train_s = time.perf_counter() - t_train
    artifact = Path(result["artifact"]["path"])

    # 4. fp16 weights (read back as fp32), then measure what ships.
    dest = shipped.shipped_path(shipped.TRAINED_TEXT, Path(out_root))
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trained = GPT2LMHeadModel.from_pretrained(artifact, dtype=torch.float32)
    trained.to(torch.float16).save_pretrained(tmp, safe_serialization=True)
    _set_config_dtype(tmp / "config.json", "float32")
    GPT2TokenizerFast.from_pretrained(artifact).save_pretrained(tmp)
    measures = measure_text(tmp, held_out)
    log(f"measured: {measures}")
    card = {
        "id": shipped.TRAINED_TEXT,
        "kind": "text",
        "architecture": f"GPT2LMHeadModel, {recipe['n_layer']} layers × {recipe['n_embd']} dims, "
        f"{recipe['n_head']} heads, context {recipe['n_positions']}",
        "parameters": n_params,
        "trained_on": f"{len(stories)} stories ({n_words:,} words): {recipe['stories']} written by the studio's "
        "story grammar (engines/starter/corpus.py, seed 0) and the hand-written stories of "
        "assets/starter/corpus.txt",
        "recipe": recipe,
        "train_time_s": round(train_s, 1),
        "build_time_s": round(time.perf_counter() - t_start, 1),
        "machine": f"{os.cpu_count()} CPU cores (the trainer uses 1 thread for a model this small)",
        "train_metrics": {k: result["metrics"].get(k) for k in ("perplexity_before", "perplexity_after",
                                                                   "tokens_per_s", "train_time_s")},
        "measures": measures,
        "weights": "float16 (loaded as float32)",
        "rebuild": "python -m engines.starter build --kind text",
    }
    _finish(tmp, dest, card, _text_readme(card))
    return card


def _set_config_dtype(config_file: Path, dtype: str) -> None:
    data = json.loads(config_file.read_text(encoding="utf-8"))
    for key in ("dtype", "torch_dtype"):
        if key in data:
            data[key] = dtype
    data.setdefault("dtype", dtype)
    config_file.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def measure_text(folder: Path, held_out: list[str]) -> dict[str, Any]:
    """Held-out perplexity and the English-word share of 20 generations (temperature 0.8, 40 tokens)."""
    from engines.text.generate import TextEngine
    from engines.text.quality import PROMPTS, default_vocabulary, english_share, generate_samples, perplexity

    engine = TextEngine(str(folder), device="cpu", dtype="float32")
    engine.load()
    ppl = perplexity(engine.model, engine.tokenizer, held_out)
    samples = generate_samples(engine, PROMPTS, max_new_tokens=40, temperature=0.8)
    share, n = english_share(samples, default_vocabulary())
    t0 = time.perf_counter()
    generate_samples(engine, PROMPTS[:1], max_new_tokens=40)
    return {
        "held_out_perplexity": round(ppl, 2),
        "english_word_share": round(share, 4),
        "generated_words": n,
        "prompts": len(PROMPTS),
        "generate_40_tokens_s": round(time.perf_counter() - t0, 3),
        "samples": [p + s for p, s in zip(PROMPTS[:3], samples[:3], strict=True)],
    }


def _text_readme(card: dict[str, Any]) -> str:
    m = card["measures"]
    samples = "\n".join(f"> {s.strip()}" for s in m.get("samples", []))
    return (
        f"---\nlibrary_name: transformers\ntags: [aigc-studio, starter, gpt2]\n---\n\n"
        f"# {card['id']}\n\nThe studio's offline text starter: {card['architecture']}, "
        f"{card['parameters']:,} weights, byte-level BPE of {card['recipe']['vocab_size']} tokens.\n\n"
        f"**Trained on** {card['trained_on']}.\n\n"
        f"**Recipe**: the studio's `text-lora` trainer, method `full`, {card['recipe']['trainer']['max_steps']} "
        f"steps of {card['recipe']['trainer']['batch_size']} × {card['recipe']['trainer']['block_size']} tokens, "
        f"learning rate {card['recipe']['trainer']['learning_rate']} ({card['recipe']['trainer']['lr_scheduler']}); "
        f"{card['train_time_s'] / 60:.0f} minutes on {card['machine']}.\n\n"
        f"**Measured** (engines/text/quality.py): held-out perplexity {m['held_out_perplexity']} on "
        f"{card['recipe']['held_out_stories']} stories it never saw; {m['english_word_share'] * 100:.1f} % of "
        f"{m['generated_words']} generated words are English words (20 fresh prompts, temperature 0.8, 40 new "
        f"tokens).\n\nSamples:\n\n{samples}\n\n"
        f"It writes simple children's-story English; it knows nothing else. Rebuild: `{card['rebuild']}`.\n"
    )


def _finish(tmp: Path, dest: Path, card: dict[str, Any], readme: str) -> None:
    """README, then card.json last (its presence marks a complete folder), then swap into place."""
    (tmp / "README.md").write_text(readme, encoding="utf-8")
    (tmp / shipped.CARD_FILE).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def _build_image(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from engines.starter.build_image import build_image

    return build_image(*args, **kwargs)


def _build_speech(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from engines.starter.build_speech import build_speech

    return build_speech(*args, **kwargs)


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {"text": build_text, "image": _build_image,
                                                      "speech": _build_speech}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m engines.starter", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="rebuild the trained starters into assets/starter/")
    b.add_argument("--kind", choices=sorted(BUILDERS), action="append", help="only these (default: all)")
    b.add_argument("--out", type=Path, default=shipped.ASSETS, help="where the starter folders go")
    b.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temp folder)")
    b.add_argument("--steps", type=int, default=None, help="override the recipe's training steps")
    args = parser.parse_args(argv)
    for kind in args.kind or sorted(BUILDERS):
        work = args.work / kind if args.work else None
        card = BUILDERS[kind](args.out, work=work, steps=args.steps)
        print(json.dumps(card.get("measures"), indent=2))
    return 0
