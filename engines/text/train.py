"""Kind `text-lora`: fine-tune a causal LM on a text dataset — a LoRA adapter, or every weight.

    accelerate launch -m engines.text.train --run-dir runs/<job-id>

Data (`data.jsonl` of the dataset folder): documents (`{"text"}`) are joined with EOS and cut into
`block_size` blocks (packing); prompt/completion rows stay one padded sequence each, with the loss on
the completion only (prompt labels are -100). A seeded share of the rows is held out, and the
perplexity on it is measured before and after training.

Artifact: `lora` → a standard PEFT folder (adapter_config.json + adapter_model.safetensors +
README.md), type `text_adapter`; `full` → a model folder (model.safetensors + tokenizer + README.md),
type `text_model`, which the studio lists as a trained text model.

Resume is exact: the batch of a step depends only on (seed, step), and checkpoints hold the trainable
weights, the optimizer, the scheduler and the torch RNG. The data lives in `train_data.py`; the
model — built, scored and saved — in `train_model.py`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engines.text.train_data import build_examples, collate, micro_batch_indices, read_rows, split_rows
from engines.text.train_model import (
    build_model,
    context_length,
    evaluate,
    model_card,
    perplexity,
    resolve_base,
    sample_text,
    save_artifact,
)
from engines.training import (
    RunDir,
    TrainingLoop,
    accumulated_step,
    adamw_with_schedule,
    any_process,
    artifact_dir,
    dataset_name,
    is_main_process,
    keeps_torch_threads,
    mean_over_processes,
    one_thread_if_tiny,
    restore_rng,
    resume_training,
    save_training_state,
    this_process_share,
    trainer_main,
)

if TYPE_CHECKING:
    from engines.registry import ModelSpec

SAMPLE_PROMPT_WORDS = 6


@dataclass
class TextLoraConfig:
    """Fine-tune a causal language model on a text dataset: a LoRA adapter, or all of its weights."""

    method: Literal["auto", "lora", "full"] | None = "auto"  # auto: full for starter/ models, else lora
    max_steps: int = 0  # optimizer steps in total (0: from epochs)
    epochs: float = 3.0  # passes over the training data when max_steps is 0
    learning_rate: float | None = None  # None: 2e-4 LoRA, 5e-5 full (5e-4 on a starter, 3e-3 from random weights)
    batch_size: int = 8  # sequences per micro-batch
    gradient_accumulation_steps: int = 1  # micro-batches per optimizer step
    block_size: int = 256  # tokens per sequence (capped at the model's context)
    lora_rank: int = 8  # LoRA: rank r of the update matrices
    lora_alpha: float = 16.0  # LoRA: the update is scaled by lora_alpha / lora_rank
    lora_dropout: float = 0.05  # LoRA: dropout on the adapter's input
    target_modules: list[str] | None = None  # LoRA: modules to adapt (None: GPT-2 c_attn+c_proj, else peft's)
    warmup_steps: int = 0  # steps of linear learning-rate warm-up
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"  # decay after the warm-up
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: float = 1.0  # gradient-norm clipping (0: off)
    eval_fraction: float = 0.1  # share of rows held out for perplexity (seeded split)
    seed: int = 0  # seeds the split, the data order, the adapter's initial weights and dropout
    save_every: int = 50  # steps between checkpoints and progress samples (0: at the end only)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    sample_prompt: str = ""  # prompt of the progress samples (empty: the start of a held-out row)
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"  # auto: bf16 on GPUs that have it
    num_processes: int = 1  # processes training together (GPUs, or CPU processes over gloo); same global batch

    def __post_init__(self) -> None:
        if not 1 <= self.num_processes <= 64:
            raise ValueError("'num_processes' must be 1 to 64.")
        for name in ("batch_size", "gradient_accumulation_steps", "lora_rank", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"'{name}' must be at least 1.")
        if self.block_size < 8:
            raise ValueError("'block_size' must be at least 8 tokens.")
        for name in ("max_steps", "warmup_steps", "save_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"'{name}' must not be negative.")
        if self.max_steps == 0 and not self.epochs > 0:
            raise ValueError("Set 'max_steps' or a positive number of 'epochs'.")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError("'learning_rate' must be positive.")
        if not 0 <= self.eval_fraction < 1:
            raise ValueError("'eval_fraction' must be at least 0 and below 1.")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError("'lora_dropout' must be at least 0 and below 1.")
        if self.lora_alpha <= 0 or self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ValueError(
                "'lora_alpha' must be positive; 'weight_decay' and 'max_grad_norm' not negative."
            )
        if self.target_modules is not None and not all(m.strip() for m in self.target_modules):
            raise ValueError("'target_modules' must be module names such as 'c_attn'.")


CONFIG_CLASS = TextLoraConfig


def resolve_method(method: str | None, base: ModelSpec) -> str:
    """'auto'/None → full for the tiny starter models (random weights: LoRA alone learns little), else lora."""
    if method in ("lora", "full"):
        return method
    return "full" if base.is_starter else "lora"


def default_learning_rate(method: str, base: ModelSpec) -> float:
    """LoRA 2e-4; all weights: 3e-3 from random weights, 5e-4 on a (small) trained starter, else 5e-5."""
    if method == "lora":
        return 2e-4
    if base.is_random_starter:
        return 3e-3
    return 5e-4 if base.is_starter else 5e-5


# -- data ----------------------------------------------------------------------------------------
def total_steps_for(config: TextLoraConfig, n_train: int) -> int:
    if config.max_steps:
        return config.max_steps
    micro = math.ceil(config.epochs * math.ceil(n_train / config.batch_size))
    return max(1, math.ceil(micro / config.gradient_accumulation_steps))


def default_sample_prompt(held_out: list[dict[str, str]], train: list[dict[str, str]], fmt: str) -> str:
    row = (held_out or train)[0]
    if fmt == "prompt_completion":
        return row["prompt"][-200:]
    return " ".join(row["text"].split()[:SAMPLE_PROMPT_WORDS])



# -- the run -------------------------------------------------------------------------------------
@keeps_torch_threads
def run(config: TextLoraConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    # 1. The job: base model, method, output folder.
    job = run_dir.read_job()
    base, location = resolve_base(job, job.models_dir())
    base_id = base.id
    method = resolve_method(config.method, base)
    lr = config.learning_rate or default_learning_rate(method, base)
    mixed = config.mixed_precision
    if mixed == "auto":
        mixed = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    accelerator = Accelerator(cpu=job.device == "cpu", mixed_precision=mixed)
    main = accelerator.is_main_process and is_main_process()
    set_seed(config.seed)

    # 2. Data: seeded split by row, then tokenized examples.
    if not job.dataset_path:
        raise ValueError("text-lora needs a text dataset: pass dataset_id.")
    rows, fmt = read_rows(Path(job.dataset_path))
    train_rows, held_rows = split_rows(rows, config.eval_fraction, config.seed)
    model, tokenizer = build_model(location, method, config)
    block = min(config.block_size, context_length(model))
    train_ex = build_examples(train_rows, fmt, tokenizer, block)
    eval_ex = build_examples(held_rows, fmt, tokenizer, block) if held_rows else []
    held_out = bool(eval_ex)
    eval_ex = eval_ex or train_ex  # too little data to hold any out: perplexity on the training set
    if not train_ex:
        raise ValueError("The dataset gives no training sequences (are the completions empty?).")
    total_steps = total_steps_for(config, len(train_ex))
    pad_id = tokenizer.pad_token_id
    prompt = config.sample_prompt or default_sample_prompt(held_rows, train_rows, fmt)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    n_total = sum(p.numel() for p in model.parameters())
    one_thread_if_tiny(n_total, on_cpu=accelerator.device.type == "cpu")

    # 3. Optimizer and schedule; on resume their states, the weights and the RNG.
    optimizer, scheduler = adamw_with_schedule(
        trainable, lr=lr, weight_decay=config.weight_decay, schedule=config.lr_scheduler,
        warmup_steps=config.warmup_steps, total_steps=total_steps,
    )  # fmt: skip
    ppl_before, eval_before = None, None
    ckpt = resume_training(run_dir, model, optimizer, scheduler) if job.resume else None
    if ckpt is not None:
        eval_before = ckpt.meta.get("eval_loss_before")
        ppl_before = ckpt.meta.get("perplexity_before")
        print(f"text-lora: resumed from step {ckpt.step} ({ckpt.path.name})", flush=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    raw = accelerator.unwrap_model(model)
    if eval_before is None:
        eval_before, _ = evaluate(raw, eval_ex, pad_id, config.batch_size, device)
        ppl_before = perplexity(eval_before)
    if ckpt is not None:
        restore_rng(ckpt.extra_state)

    def checkpoint(step: int) -> None:
        if main:
            meta = {"kind": "text-lora", "method": method, "base_model": base_id, "config": asdict(config),
                    "eval_loss_before": eval_before, "perplexity_before": ppl_before}  # fmt: skip
            save_training_state(run_dir, step, accelerator.unwrap_model(model), optimizer, scheduler,
                                meta=meta, keep_last=config.keep_checkpoints)  # fmt: skip

    loop = TrainingLoop(run_dir, name="text-lora", start_step=ckpt.step if ckpt else 0, total_steps=total_steps,
                        save_every=config.save_every, checkpoint=checkpoint, resume=job.resume, main=main,
                        agree=lambda flag: any_process(accelerator, flag))  # fmt: skip
    print(
        f"text-lora: {method} on {base_id} ({n_trainable:,} of {n_total:,} weights trainable), "
        f"{len(train_ex)} train / {len(eval_ex)} held-out sequences of ≤{block} tokens, "
        f"steps {loop.start_step + 1}..{total_steps} on {device}, perplexity before {ppl_before:.2f}",
        flush=True,
    )

    # 4. Train: one event per step; checkpoint, held-out loss and a sample every save_every steps.
    accum = config.gradient_accumulation_steps
    step_tokens: list[int] = []  # tokens of the current step's micro-batches

    def micro_batches(step: int) -> Any:
        step_tokens.clear()
        for j in range(accum):
            idx = micro_batch_indices(len(train_ex), config.batch_size, config.seed, (step - 1) * accum + j)
            batch = collate([train_ex[i] for i in this_process_share(idx, accelerator)], pad_id)
            step_tokens.append(int(batch["attention_mask"].sum()))
            yield {k: v.to(device) for k, v in batch.items()}

    model.train()
    loss_value = float("nan")
    t_start = time.perf_counter()
    tokens_seen = 0
    with loop:
        for step in loop.steps():
            t0 = time.perf_counter()
            loss_value = accumulated_step(
                accelerator, micro_batches(step), lambda batch: model(**batch).loss, accum=accum,
                params=trainable, max_grad_norm=config.max_grad_norm, optimizer=optimizer, scheduler=scheduler,
            )  # fmt: skip
            loss_value = mean_over_processes(accelerator, loss_value)  # each process saw its share
            if not math.isfinite(loss_value):
                raise ValueError(
                    f"The loss became {loss_value} at step {step}: training diverged. Lower the learning_rate "
                    "(or set mixed_precision to 'no') and start again."
                )
            tokens_seen += sum(step_tokens)
            elapsed = max(time.perf_counter() - t0, 1e-9)
            fields: dict[str, Any] = {
                "loss": round(loss_value, 6),
                "lr": scheduler.get_last_lr()[0],
                "tokens_per_s": round(sum(step_tokens) / elapsed, 1),
                "epoch": round(step * accum * config.batch_size / len(train_ex), 3),
            }
            if loop.save_point(step):
                loop.save(step)
                if main:
                    raw = accelerator.unwrap_model(model)
                    eval_loss, _ = evaluate(raw, eval_ex, pad_id, config.batch_size, device)
                    if math.isfinite(eval_loss):
                        fields["eval_loss"] = round(eval_loss, 6)
                    fields["sample_text"] = sample_text(raw, tokenizer, prompt, config.seed, device)
            loop.log(step, **fields, total_steps=total_steps)
            if loop.stop_requested(step):
                return {"status": "cancelled", "metrics": {"loss": loss_value, "method": method}}
    train_time = time.perf_counter() - t_start
    tokens_seen = round(mean_over_processes(accelerator, float(tokens_seen)) * accelerator.num_processes)  # all

    # 5. Report and save the artifact (rank 0 only).
    raw = accelerator.unwrap_model(model)
    eval_after, eval_tokens = evaluate(raw, eval_ex, pad_id, config.batch_size, device)
    metrics = {
        "method": method,
        "loss": loss_value,
        "eval_loss": eval_after,
        "eval_loss_before": eval_before,
        "perplexity_before": ppl_before,
        "perplexity_after": perplexity(eval_after),
        "eval_tokens": eval_tokens,
        "train_sequences": len(train_ex),
        "train_time_s": round(train_time, 3),
        "tokens_per_s": round(tokens_seen / max(train_time, 1e-9), 1),
        "trainable_params": n_trainable,
        "total_params": n_total,
        "learning_rate": lr,
        "held_out_from_training": held_out,
    }
    metrics = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()}
    if not main:
        return {"metrics": metrics, "artifact": None}
    print(
        f"text-lora: done in {train_time:.1f}s, perplexity {ppl_before:.2f} → {perplexity(eval_after):.2f}",
        flush=True,
    )
    out_dir = artifact_dir(job, run_dir)
    name = dataset_name(Path(job.dataset_path))
    card = model_card(base_id, method, name, job.dataset_id, config, metrics, fmt)
    save_artifact(raw, tokenizer, out_dir, method=method, base_id=base_id, card=card)
    return {
        "metrics": metrics,
        "artifact": {
            "type": "text_adapter" if method == "lora" else "text_model",
            "path": str(out_dir),
            "base_model": base_id,
            "name": f"{name} · {method} on {base_id}"[:200],
        },
    }


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
