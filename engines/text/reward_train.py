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
from dataclasses import asdict, dataclass
from typing import Any

from engines.registry import TINY_MODEL_PARAMS
from engines.text.feedback_train import read_ratings
from engines.text.train_model import load_tokenizer, resolve_base
from engines.training import (
    HFTrainerRun,
    RunDir,
    artifact_dir,
    keeps_torch_threads,
    loss_range,
    one_thread_if_tiny,
    save_model_folder,
    trainer_main,
)


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


@keeps_torch_threads
def run(config: RewardConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig as TrlRewardConfig
    from trl import RewardTrainer

    # 1. The ratings the studio collected, split before pairing
    job = run_dir.read_job()
    preferences, votes, rated = read_ratings(run_dir)
    check_ratings(config, preferences, votes)
    train_pairs, held_out = split(config, preferences, votes)
    if not train_pairs:
        raise ValueError("The training share of the ratings makes no preference pair: rate more outputs.")

    # 2. The base model with a one-output classification head
    torch.manual_seed(config.seed)
    base, location = resolve_base(job, job.models_dir())
    base_id = base.id
    tokenizer = load_tokenizer(location)
    model = AutoModelForSequenceClassification.from_pretrained(location, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    n_params = sum(p.numel() for p in model.parameters())
    tiny = n_params < TINY_MODEL_PARAMS
    one_thread_if_tiny(n_params, on_cpu=not torch.cuda.is_available())
    lr = config.learning_rate or (1e-3 if tiny else 2e-5)
    peft_config = None if tiny else LoraConfig(r=config.lora_rank, lora_alpha=2 * config.lora_rank,
                                               task_type="SEQ_CLS")
    before = accuracy(model, tokenizer, held_out, config.max_length)

    # 3. TRL's RewardTrainer, checkpoints in the run folder, events in ours
    hf_run = HFTrainerRun(run_dir, job)
    args = TrlRewardConfig(**hf_run.trainer_args(
        max_steps=config.max_steps, batch_size=config.batch_size, learning_rate=lr, max_length=config.max_length,
        save_every=config.save_every, seed=config.seed))
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(train_pairs),
                            processing_class=tokenizer, peft_config=peft_config, callbacks=[hf_run.callback])
    elapsed = hf_run.train(trainer)
    if hf_run.cancelled:
        return {"status": "cancelled"}

    # 4. Held-out accuracy, then the model as a plain transformers folder
    trained = trainer.model.merge_and_unload() if peft_config is not None else trainer.model
    trained.eval()
    after = accuracy(trained, tokenizer, held_out, config.max_length)
    loss_start, loss = loss_range(trainer)
    metrics = {
        "train_pairs": len(train_pairs), "eval_pairs": len(held_out), "ratings": len(preferences),
        "votes": len(votes), "eval_accuracy_before": before, "eval_accuracy": after,
        "loss_start": loss_start, "loss": loss,
        "train_time_s": round(elapsed, 2), "learning_rate": lr, "method": "full" if tiny else "lora",
    }
    name = rated.get("name", base_id)
    out_dir = artifact_dir(job, run_dir)
    save_model_folder(trained, tokenizer, out_dir, readme=(
        f"# Reward model\n\nBase model: `{base_id}` with a one-output classification head, trained on "
        f"{len(preferences)} ratings and {len(votes)} comparisons of `{name}`.\n\nHeld-out accuracy (the preferred "
        f"answer scored higher): {after}\n\nParameters: `{json.dumps(asdict(config))}`\n"))
    return {"metrics": metrics,
            "artifact": {"type": "reward_model", "path": str(out_dir), "base_model": base_id,
                         "name": f"{name} · reward model"}}


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
