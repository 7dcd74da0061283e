"""Job kind `reward`: a reward model trained on people's ratings, with TRL's RewardTrainer — the
seeds' text-classification fine-tune put to work as a judge for best-of-n generation.

The studio writes the ratings of text outputs into the run folder, like `text-feedback` does:

    inputs/preferences.jsonl   {"prompt", "completion", "label": bool}   (thumbs)
    inputs/pairs.jsonl         {"prompt", "chosen", "rejected"}          (arena votes)

Rated outputs are split into train and held-out sets first, then turned into preference pairs
within each set (a thumbs-up and a thumbs-down answer to the same prompt; arena votes as they
are), so the held-out accuracy — how often the model scores the preferred answer higher — is
measured on answers it never saw. The model is `AutoModelForSequenceClassification` with one
output on the base model (fully fine-tuned when small, else LoRA); it is saved as a plain
transformers folder (safetensors) that `AutoModelForSequenceClassification.from_pretrained`
loads.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engines.registry import TINY_MODEL_PARAMS
from engines.text.feedback_train import _RunDirCallback, read_jsonl
from engines.training import EventLog, RunDir, trainer_main


@dataclass
class RewardConfig:
    max_steps: int = 120  # optimisation steps
    learning_rate: float | None = None  # None: 2e-5, or 1e-3 for tiny models
    batch_size: int = 16  # preference pairs per step
    eval_fraction: float = 0.2  # share of rated outputs held out to measure accuracy
    max_length: int = 128  # tokens of prompt + answer kept per example
    max_pairs: int = 4000  # at most this many training pairs (sampled when ratings make more)
    min_ratings: int = 8  # refuse to train on fewer rated outputs
    lora_rank: int = 16  # LoRA rank when the base is too large to fine-tune fully
    seed: int = 0  # split, pair sampling and initialisation
    save_every: int = 40  # checkpoint every N steps (and at the end)

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "max_length", "max_pairs", "save_every", "lora_rank"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 < self.eval_fraction < 0.9:
            raise ValueError("eval_fraction must be between 0 and 0.9")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise ValueError("learning_rate must be between 0 and 1")


CONFIG_CLASS = RewardConfig


def check_ratings(config: RewardConfig, preferences: list[dict], pairs: list[dict]) -> None:
    """ValueError with the fix when the ratings cannot teach a judge anything."""
    labels = {bool(r["label"]) for r in preferences}
    if len(preferences) < config.min_ratings and len(pairs) < config.min_ratings:
        raise ValueError(f"A reward model needs at least {config.min_ratings} rated outputs or voted comparisons; "
                         f"there are {len(preferences)} and {len(pairs)}.")
    if not pairs and labels != {True, False}:
        raise ValueError("The ratings are all 👍 or all 👎: a reward model learns from the difference.")


def make_pairs(preferences: list[dict], rng: random.Random, limit: int) -> list[dict]:
    """Thumbs → pairs: each 👍 answer against each 👎 answer to the same prompt (any prompt when a
    prompt has only one kind), sampled down to `limit`."""
    by_prompt: dict[str, tuple[list[str], list[str]]] = {}
    for r in preferences:
        ups, downs = by_prompt.setdefault(r["prompt"], ([], []))
        (ups if r["label"] else downs).append(r["completion"])
    pairs = [{"chosen": p + u, "rejected": p + d} for p, (ups, downs) in by_prompt.items() for u in ups for d in downs]
    if not pairs:  # no prompt has both: pair across prompts
        ups = [r["prompt"] + r["completion"] for r in preferences if r["label"]]
        downs = [r["prompt"] + r["completion"] for r in preferences if not r["label"]]
        pairs = [{"chosen": u, "rejected": d} for u in ups for d in downs]
    rng.shuffle(pairs)
    return pairs[:limit]


def split(config: RewardConfig, preferences: list[dict], votes: list[dict]) -> tuple[list[dict], list[dict]]:
    """(train pairs, held-out pairs): rated outputs and votes are split before pairing."""
    rng = random.Random(config.seed)
    rated, votes = preferences[:], votes[:]
    rng.shuffle(rated)
    rng.shuffle(votes)
    cut, vcut = int(len(rated) * config.eval_fraction), int(len(votes) * config.eval_fraction)
    as_pairs = [{"chosen": v["prompt"] + v["chosen"], "rejected": v["prompt"] + v["rejected"]} for v in votes]
    train = make_pairs(rated[cut:], rng, config.max_pairs) + as_pairs[vcut:]
    held_out = make_pairs(rated[:cut], rng, config.max_pairs) + as_pairs[:vcut]
    return train, held_out


def accuracy(model: Any, tokenizer: Any, pairs: list[dict], max_length: int) -> float | None:
    """How often the model scores the preferred answer above the other one."""
    from engines.text.reward import score_texts

    if not pairs:
        return None
    chosen = score_texts(model, tokenizer, [p["chosen"] for p in pairs], max_length)
    rejected = score_texts(model, tokenizer, [p["rejected"] for p in pairs], max_length)
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)


def run(config: RewardConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig as TrlRewardConfig
    from trl import RewardTrainer

    from engines.text.train import resolve_base

    # 1. The ratings the studio collected, split before pairing
    job = run_dir.read_job()
    inputs = run_dir.path / "inputs"
    preferences = read_jsonl(inputs / "preferences.jsonl")
    votes = read_jsonl(inputs / "pairs.jsonl")
    check_ratings(config, preferences, votes)
    train_pairs, held_out = split(config, preferences, votes)
    if not train_pairs:
        raise ValueError("The training share of the ratings makes no preference pair: rate more outputs.")

    # 2. The base model with a one-output classification head
    torch.manual_seed(config.seed)
    base, location = resolve_base(job, job.models_dir())
    base_id = base.id
    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(location, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    n_params = sum(p.numel() for p in model.parameters())
    tiny = n_params < TINY_MODEL_PARAMS
    threads = torch.get_num_threads()
    if tiny and not torch.cuda.is_available():
        torch.set_num_threads(1)  # tiny models: threads only fight each other
    lr = config.learning_rate or (1e-3 if tiny else 2e-5)
    peft_config = None if tiny else LoraConfig(r=config.lora_rank, lora_alpha=2 * config.lora_rank,
                                               task_type="SEQ_CLS")
    before = accuracy(model, tokenizer, held_out, config.max_length)

    # 3. TRL's RewardTrainer, checkpoints in the run folder, events in ours
    checkpoints = run_dir.path / "checkpoints"
    args = TrlRewardConfig(
        output_dir=str(checkpoints), max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
        learning_rate=lr, max_length=config.max_length, logging_steps=1, report_to="none", save_strategy="steps",
        save_steps=config.save_every, save_total_limit=2, seed=config.seed, use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True, dataloader_num_workers=0,
    )
    resume_from, resume_step = None, None
    if job.resume:
        found = sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        if found:
            resume_from, resume_step = str(found[-1]), int(found[-1].name.split("-")[1])
    events = EventLog(run_dir, resume_step=resume_step)
    callback = _RunDirCallback(run_dir, events)
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(train_pairs),
                            processing_class=tokenizer, peft_config=peft_config, callbacks=[callback.callback])
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    elapsed = time.perf_counter() - t0
    events.close()
    if callback.cancelled:
        torch.set_num_threads(threads)
        return {"status": "cancelled"}

    # 4. Held-out accuracy, then the model as a plain transformers folder
    trained = trainer.model.merge_and_unload() if peft_config is not None else trainer.model
    trained.eval()
    after = accuracy(trained, tokenizer, held_out, config.max_length)
    torch.set_num_threads(threads)
    out_dir = Path(job.output_dir) if job.output_dir else run_dir.path / "reward-model"
    out_dir.mkdir(parents=True, exist_ok=True)
    trained.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    history = [h for h in trainer.state.log_history if "loss" in h]
    metrics = {
        "train_pairs": len(train_pairs), "eval_pairs": len(held_out), "ratings": len(preferences),
        "votes": len(votes), "eval_accuracy_before": before, "eval_accuracy": after,
        "loss_start": float(history[0]["loss"]) if history else None,
        "loss": float(history[-1]["loss"]) if history else None,
        "train_time_s": round(elapsed, 2), "learning_rate": lr, "method": "full" if tiny else "lora",
    }
    name = json.loads((inputs / "inputs.json").read_text()).get("name", base_id) if (inputs / "inputs.json").exists() \
        else base_id
    (out_dir / "README.md").write_text(
        f"# Reward model\n\nBase model: `{base_id}` with a one-output classification head, trained on "
        f"{len(preferences)} ratings and {len(votes)} comparisons of `{name}`.\n\nHeld-out accuracy (the preferred "
        f"answer scored higher): {after}\n\nParameters: `{json.dumps(asdict(config))}`\n", encoding="utf-8")
    return {"metrics": metrics,
            "artifact": {"type": "reward_model", "path": str(out_dir), "base_model": base_id,
                         "name": f"{name} · reward model"}}


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
