"""Job kind `text-feedback`: preference tuning of a text adapter from people's ratings, with TRL.

Thumbs become KTO examples (prompt, completion, label); blind A/B votes become DPO pairs
(prompt, chosen, rejected). The studio writes them into the run folder (`inputs/`), together
with the adapter being improved (if any); this trainer tunes a LoRA adapter on the same base
model and saves it as a new adapter version, in PEFT format.

    inputs/preferences.jsonl   {"prompt", "completion", "label": bool}   (KTO)
    inputs/pairs.jsonl         {"prompt", "chosen", "rejected"}          (DPO)
    inputs/adapter/            the adapter the ratings were given to (optional)

The HF Trainer inside TRL keeps its own checkpoints (`checkpoints/checkpoint-N`) and resumes
from them exactly; engines.training.HFTrainerRun turns its logs into our events and honours the
stop signal.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engines.registry import TINY_MODEL_PARAMS
from engines.text.train_model import load_tokenizer, lora_targets, resolve_base
from engines.training import (
    HFTrainerRun,
    JobConfig,
    RunDir,
    artifact_dir,
    keeps_torch_threads,
    loss_history,
    loss_range,
    one_thread_if_tiny,
    save_model_folder,
    trainer_main,
)


@dataclass
class TextFeedbackConfig:
    adapter: str = ""  # the adapter whose ratings to learn from (empty: the base model's own outputs)
    method: str = "auto"  # kto (thumbs) | dpo (A/B pairs) | auto: dpo when there are enough pairs, else kto
    max_steps: int = 60  # optimisation steps
    learning_rate: float | None = None  # None: 5e-5, or 2e-3 for tiny models
    batch_size: int = 8  # examples per step
    beta: float = 0.1  # how far the tuned adapter may move from the reference (higher = closer)
    desirable_weight: float | None = None  # KTO: weight of thumbs-up examples (None: balance up and down)
    undesirable_weight: float | None = None  # KTO: weight of thumbs-down examples (None: balance up and down)
    lora_rank: int = 8  # rank of a new LoRA adapter
    lora_alpha: int = 16  # LoRA scaling numerator
    lora_dropout: float = 0.0  # dropout inside LoRA layers
    target_modules: list[str] = field(default_factory=list)  # empty: c_attn + c_proj on GPT-2, else peft's choice
    max_length: int = 128  # tokens of prompt + completion kept per example
    min_ratings: int = 8  # refuse to train on fewer examples
    min_pairs: int = 8  # auto picks DPO from this many comparison pairs
    seed: int = 0  # data order and LoRA initialisation
    save_every: int = 20  # checkpoint every N steps (and at the end)

    def __post_init__(self) -> None:
        if self.method not in ("auto", "kto", "dpo"):
            raise ValueError("method must be auto, kto or dpo")
        for name in ("max_steps", "batch_size", "lora_rank", "max_length", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise ValueError("learning_rate must be between 0 and 1")


CONFIG_CLASS = TextFeedbackConfig


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_ratings(run_dir: RunDir) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(thumbs, A/B pairs, what was rated: {"adapter", "name"}) from the inputs the studio wrote."""
    inputs = run_dir.path / "inputs"
    info = json.loads((inputs / "inputs.json").read_text()) if (inputs / "inputs.json").exists() else {}
    return read_jsonl(inputs / "preferences.jsonl"), read_jsonl(inputs / "pairs.jsonl"), info


def choose_method(config: TextFeedbackConfig, preferences: list[dict], pairs: list[dict]) -> str:
    """Which preference objective fits the data; ValueError with the fix when none does."""
    method = config.method
    if method == "auto":
        method = "dpo" if len(pairs) >= config.min_pairs else "kto"
    if method == "dpo":
        if len(pairs) < config.min_pairs:
            raise ValueError(f"DPO needs at least {config.min_pairs} voted comparisons; there are {len(pairs)}.")
        return method
    labels = {bool(r["label"]) for r in preferences}
    if len(preferences) < config.min_ratings:
        raise ValueError(f"KTO needs at least {config.min_ratings} rated outputs; there are {len(preferences)}.")
    if labels != {True, False}:
        only = "thumbs up" if labels == {True} else "thumbs down"
        raise ValueError(f"All {len(preferences)} ratings are {only}: KTO needs both 👍 and 👎 examples.")
    return method


def kto_weights(config: TextFeedbackConfig, preferences: list[dict]) -> tuple[float, float]:
    """TRL's advice for KTO: desirable_weight·n_up ≈ undesirable_weight·n_down. Ratings are rarely
    balanced (people thumb down more), so unset weights are chosen to balance them."""
    n_up = sum(bool(r["label"]) for r in preferences)
    n_down = len(preferences) - n_up
    desirable = config.desirable_weight or (max(1.0, n_down / n_up) if n_up else 1.0)
    undesirable = config.undesirable_weight or (max(1.0, n_up / n_down) if n_down else 1.0)
    return round(desirable, 4), round(undesirable, 4)


def load_models(job: JobConfig, run_dir: RunDir) -> tuple[Any, Any, Any, str, bool]:
    """(policy, reference or None, tokenizer, base id, whether a new LoRA must be added)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base, location = resolve_base(job, job.models_dir())
    tokenizer = load_tokenizer(location)
    policy = AutoModelForCausalLM.from_pretrained(location)
    adapter = run_dir.path / "inputs" / "adapter"
    if not (adapter / "adapter_config.json").exists():
        return policy, None, tokenizer, base.id, True  # TRL adds a LoRA; the base itself is the reference
    # Improve the rated adapter: train it further, against a frozen copy of itself.
    policy = PeftModel.from_pretrained(policy, str(adapter), is_trainable=True)
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(location), str(adapter))
    reference = reference.merge_and_unload().eval()
    return policy, reference, tokenizer, base.id, False


@keeps_torch_threads
def run(config: TextFeedbackConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    # 1. The ratings the studio collected
    job = run_dir.read_job()
    preferences, pairs, rated = read_ratings(run_dir)
    method = choose_method(config, preferences, pairs)
    rows = pairs if method == "dpo" else preferences

    # 2. Models
    torch.manual_seed(config.seed)
    policy, reference, tokenizer, base_id, new_lora = load_models(job, run_dir)
    n_params = sum(p.numel() for p in policy.parameters())
    one_thread_if_tiny(n_params, on_cpu=not torch.cuda.is_available())
    lr = config.learning_rate or (2e-3 if n_params < TINY_MODEL_PARAMS else 5e-5)
    peft_config = None
    if new_lora:
        peft_config = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                 target_modules=lora_targets(config.target_modules, policy), task_type="CAUSAL_LM")

    # 3. TRL trainer writing checkpoints into the run folder
    hf_run = HFTrainerRun(run_dir, job)
    common = hf_run.trainer_args(max_steps=config.max_steps, batch_size=config.batch_size, learning_rate=lr,
                                 max_length=config.max_length, save_every=config.save_every, seed=config.seed)
    dataset = Dataset.from_list(rows)
    if method == "kto":
        desirable, undesirable = kto_weights(config, preferences)
        args = KTOConfig(beta=config.beta, desirable_weight=desirable, undesirable_weight=undesirable, **common)
        trainer = KTOTrainer(model=policy, ref_model=reference, args=args, train_dataset=dataset,
                             processing_class=tokenizer, peft_config=peft_config, callbacks=[hf_run.callback])
    else:
        trainer = DPOTrainer(model=policy, ref_model=reference, args=DPOConfig(beta=config.beta, **common),
                             train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config,
                             callbacks=[hf_run.callback])
    elapsed = hf_run.train(trainer)
    if hf_run.cancelled:
        return {"status": "cancelled"}

    # 4. The new adapter version, in PEFT format with a model card
    history = loss_history(trainer)
    loss_start, loss = loss_range(trainer)
    metrics = {
        "method": method,
        "examples": len(rows),
        "loss_start": loss_start,
        "loss": loss,
        "rewards_margin": float(history[-1].get("rewards/margins", 0.0)) if history else None,
        "train_time_s": round(elapsed, 2),
        "learning_rate": lr,
    }
    out_dir = artifact_dir(job, run_dir)
    save_model_folder(trainer.model, tokenizer, out_dir, readme=(
        f"# Preference-tuned adapter\n\nBase model: `{base_id}`\n\nTuned from: `{rated.get('adapter') or 'the base'}`"
        f" with {method.upper()} on {len(rows)} {'comparisons' if method == 'dpo' else 'ratings'}.\n\n"
        f"Parameters: `{json.dumps(asdict(config))}`\n\nMetrics: `{json.dumps(metrics)}`\n"))
    return {
        "metrics": metrics,
        "artifact": {"type": "text_adapter", "path": str(out_dir), "base_model": base_id,
                     "name": f"{rated.get('name') or 'adapter'} + feedback ({method})"},
    }


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
