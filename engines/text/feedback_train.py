"""Job kind `text-feedback`: preference tuning of a text adapter from people's ratings, with TRL.

Thumbs become KTO examples (prompt, completion, label); blind A/B votes become DPO pairs
(prompt, chosen, rejected). The studio writes them into the run folder (`inputs/`), together
with the adapter being improved (if any); this trainer tunes a LoRA adapter on the same base
model and saves it as a new adapter version, in PEFT format.

    inputs/preferences.jsonl   {"prompt", "completion", "label": bool}   (KTO)
    inputs/pairs.jsonl         {"prompt", "chosen", "rejected"}          (DPO)
    inputs/adapter/            the adapter the ratings were given to (optional)

The HF Trainer inside TRL keeps its own checkpoints (`checkpoints/checkpoint-N`) and resumes
from them exactly; a callback turns its logs into our events and honours the stop signal.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engines.registry import TINY_MODEL_PARAMS
from engines.training import EventLog, RunDir, trainer_main


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


def load_models(job: Any, run_dir: RunDir, config: TextFeedbackConfig) -> tuple[Any, Any, Any, str, bool]:
    """(policy, reference or None, tokenizer, base id, whether a new LoRA must be added)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engines.text.train import resolve_base

    base, location = resolve_base(job, job.models_dir())
    base_id = base.id
    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy = AutoModelForCausalLM.from_pretrained(location)
    adapter = run_dir.path / "inputs" / "adapter"
    if not (adapter / "adapter_config.json").exists():
        return policy, None, tokenizer, base_id, True  # TRL adds a LoRA; the base itself is the reference
    # Improve the rated adapter: train it further, against a frozen copy of itself.
    policy = PeftModel.from_pretrained(policy, str(adapter), is_trainable=True)
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(location), str(adapter))
    reference = reference.merge_and_unload().eval()
    return policy, reference, tokenizer, base_id, False


class _RunDirCallback:
    """Mirrors the HF Trainer's logs into events.jsonl and stops (with a checkpoint) on SIGTERM."""

    def __init__(self, run_dir: RunDir, events: EventLog):
        from transformers import TrainerCallback

        outer = self

        class Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    keep = {k.replace("/", "_"): float(v) for k, v in logs.items()
                            if isinstance(v, int | float) and k not in ("epoch",)}
                    events.append(state.global_step, **keep)

            def on_step_end(self, args, state, control, **kwargs):
                if run_dir.stop.requested:
                    outer.cancelled = True
                    control.should_save = True
                    control.should_training_stop = True

        self.cancelled = False
        self.callback = Callback()


def run(config: TextFeedbackConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    # 1. The ratings the studio collected
    job = run_dir.read_job()
    inputs = run_dir.path / "inputs"
    preferences = read_jsonl(inputs / "preferences.jsonl")
    pairs = read_jsonl(inputs / "pairs.jsonl")
    method = choose_method(config, preferences, pairs)
    rows = pairs if method == "dpo" else preferences

    # 2. Models
    torch.manual_seed(config.seed)
    policy, reference, tokenizer, base_id, new_lora = load_models(job, run_dir, config)
    n_params = sum(p.numel() for p in policy.parameters())
    threads = torch.get_num_threads()
    if n_params < TINY_MODEL_PARAMS and not torch.cuda.is_available():
        torch.set_num_threads(1)  # tiny models: threads only fight each other
    lr = config.learning_rate or (2e-3 if n_params < TINY_MODEL_PARAMS else 5e-5)
    peft_config = None
    if new_lora:
        targets = list(config.target_modules) or (
            ["c_attn", "c_proj"] if policy.config.model_type == "gpt2" else None
        )
        peft_config = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha,
                                 lora_dropout=config.lora_dropout, target_modules=targets, task_type="CAUSAL_LM")

    # 3. TRL trainer writing checkpoints into the run folder
    checkpoints = run_dir.path / "checkpoints"
    common = dict(
        output_dir=str(checkpoints), max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
        learning_rate=lr, beta=config.beta, max_length=config.max_length, logging_steps=1, report_to="none",
        save_strategy="steps", save_steps=config.save_every, save_total_limit=2, seed=config.seed,
        use_cpu=not torch.cuda.is_available(), disable_tqdm=True, dataloader_num_workers=0,
    )
    resume_from = None
    resume_step = None
    if job.resume:
        found = sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        if found:
            resume_from = str(found[-1])
            resume_step = int(found[-1].name.split("-")[1])
    events = EventLog(run_dir, resume_step=resume_step)
    callback = _RunDirCallback(run_dir, events)
    dataset = Dataset.from_list(rows)
    if method == "kto":
        desirable, undesirable = kto_weights(config, preferences)
        args = KTOConfig(desirable_weight=desirable, undesirable_weight=undesirable, **common)
        trainer = KTOTrainer(model=policy, ref_model=reference, args=args, train_dataset=dataset,
                             processing_class=tokenizer, peft_config=peft_config, callbacks=[callback.callback])
    else:
        trainer = DPOTrainer(model=policy, ref_model=reference, args=DPOConfig(**common), train_dataset=dataset,
                             processing_class=tokenizer, peft_config=peft_config, callbacks=[callback.callback])
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    elapsed = time.perf_counter() - t0
    events.close()
    torch.set_num_threads(threads)
    if callback.cancelled:
        return {"status": "cancelled"}

    # 4. The new adapter version, in PEFT format with a model card
    out_dir = Path(job.output_dir) if job.output_dir else run_dir.path / "adapter"
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    history = [h for h in trainer.state.log_history if "loss" in h]
    metrics = {
        "method": method,
        "examples": len(rows),
        "loss_start": float(history[0]["loss"]) if history else None,
        "loss": float(history[-1]["loss"]) if history else None,
        "rewards_margin": float(history[-1].get("rewards/margins", 0.0)) if history else None,
        "train_time_s": round(elapsed, 2),
        "learning_rate": lr,
    }
    parent = json.loads((inputs / "inputs.json").read_text()) if (inputs / "inputs.json").exists() else {}
    (out_dir / "README.md").write_text(
        f"# Preference-tuned adapter\n\nBase model: `{base_id}`\n\nTuned from: `{parent.get('adapter') or 'the base'}`"
        f" with {method.upper()} on {len(rows)} {'comparisons' if method == 'dpo' else 'ratings'}.\n\n"
        f"Parameters: `{json.dumps(asdict(config))}`\n\nMetrics: `{json.dumps(metrics)}`\n", encoding="utf-8")
    return {
        "metrics": metrics,
        "artifact": {"type": "text_adapter", "path": str(out_dir), "base_model": base_id,
                     "name": f"{parent.get('name') or 'adapter'} + feedback ({method})"},
    }


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
