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
weights, the optimizer, the scheduler and the torch RNG.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engines.registry import TINY_MODEL_PARAMS
from engines.text.train_data import (
    Example,
    build_examples,
    collate,
    micro_batch_indices,
    read_rows,
    split_rows,
)
from engines.training import (
    EventLog,
    RunDir,
    current_rng_state,
    is_main_process,
    restore_rng,
    resume_training,
    save_checkpoint,
    trainer_main,
)

if TYPE_CHECKING:
    from engines.registry import ModelSpec

GPT2_TARGETS = ["c_attn", "c_proj"]
EVAL_MAX_EXAMPLES = 256  # held-out sequences scored for perplexity (a cap keeps big datasets quick)
SAMPLE_NEW_TOKENS = 32
SAMPLE_PROMPT_WORDS = 6


@dataclass
class TextLoraConfig:
    """Fine-tune a causal language model on a text dataset: a LoRA adapter, or all of its weights."""

    method: Literal["auto", "lora", "full"] | None = "auto"  # auto: full for starter/ models, else lora
    max_steps: int = 0  # optimizer steps in total (0: from epochs)
    epochs: float = 3.0  # passes over the training data when max_steps is 0
    learning_rate: float | None = None  # None: 2e-4 LoRA, 5e-5 full (3e-3 full on starter models)
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

    def __post_init__(self) -> None:
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
    if method == "lora":
        return 2e-4
    return 3e-3 if base.is_starter else 5e-5


# -- data ----------------------------------------------------------------------------------------
def total_steps_for(config: TextLoraConfig, n_train: int) -> int:
    if config.max_steps:
        return config.max_steps
    micro = math.ceil(config.epochs * math.ceil(n_train / config.batch_size))
    return max(1, math.ceil(micro / config.gradient_accumulation_steps))


# -- the model -----------------------------------------------------------------------------------
def resolve_base(job: Any, models_root: Path) -> tuple[ModelSpec, str]:
    """(the job's base model, the folder or hub id to load it from)."""
    from engines.registry import ModelRegistry, ModelSpec, UnknownModel

    if job.base_model_path:  # a trained model: the studio resolved its folder
        folder = Path(job.base_model_path).resolve()
        if not folder.is_relative_to(models_root.resolve().parent) or not (folder / "config.json").is_file():
            raise ValueError(f"base model folder {folder} is not a model folder inside the data folder.")
        return ModelSpec(job.base_model or folder.name, "text", "trained", str(folder)), str(folder)
    registry = ModelRegistry(models_root, offline=job.offline)
    try:
        spec = registry.resolve(job.base_model, "text")
    except UnknownModel as exc:
        raise ValueError(str(exc)) from exc
    return spec, registry.location(spec)


def lora_targets(config: TextLoraConfig, model: Any) -> list[str] | None:
    if config.target_modules:
        return list(config.target_modules)
    return list(GPT2_TARGETS) if model.config.model_type == "gpt2" else None


def build_model(location: str, method: str, config: TextLoraConfig) -> tuple[Any, Any]:
    """(model, tokenizer): the base in float32, wrapped in a fresh LoRA adapter for method 'lora'."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            task_type="CAUSAL_LM",
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=lora_targets(config, model),
            fan_in_fan_out=model.config.model_type == "gpt2",  # GPT-2's Conv1D stores weights transposed
        )
        model = get_peft_model(model, lora)
    return model, tokenizer


def context_length(model: Any) -> int:
    cfg = model.config
    return int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None) or 1024)


def evaluate(
    model: Any, examples: list[Example], pad_id: int, batch_size: int, device: Any
) -> tuple[float, int]:
    """(mean NLL per predicted token, tokens scored) over the examples; no RNG is used."""
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, min(len(examples), EVAL_MAX_EXAMPLES), batch_size):
            batch = {k: v.to(device) for k, v in collate(examples[i : i + batch_size], pad_id).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            shift_logits = logits[:, :-1].float()  # (B, T-1, V)
            shift_labels = batch["labels"][:, 1:]  # (B, T-1)
            nll = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
                ignore_index=-100, reduction="sum",
            )  # fmt: skip
            total += nll.item()
            count += int((shift_labels != -100).sum())
    model.train(was_training)
    return (total / count if count else float("nan")), count


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0)) if loss == loss else float("nan")


def sample_text(model: Any, tokenizer: Any, prompt: str, seed: int, device: Any) -> str:
    """A short seeded continuation of the fixed prompt; the training RNG is left untouched."""
    import torch

    was_training = model.training
    model.eval()
    ids = tokenizer(prompt or tokenizer.eos_token, return_tensors="pt").input_ids.to(device)
    with torch.no_grad(), torch.random.fork_rng(devices=[] if device.type == "cpu" else None):
        torch.manual_seed(seed)
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=SAMPLE_NEW_TOKENS,
            do_sample=True, temperature=0.7, top_k=50, pad_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
    model.train(was_training)
    return prompt + tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def default_sample_prompt(held_out: list[dict[str, str]], train: list[dict[str, str]], fmt: str) -> str:
    row = (held_out or train)[0]
    if fmt == "prompt_completion":
        return row["prompt"][-200:]
    return " ".join(row["text"].split()[:SAMPLE_PROMPT_WORDS])


# -- the run -------------------------------------------------------------------------------------
def run(config: TextLoraConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch

    threads = torch.get_num_threads()  # a tiny model trains on one thread; leave the caller as it was
    try:
        return _run(config, run_dir)
    finally:
        torch.set_num_threads(threads)


def _run(config: TextLoraConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    # 1. The job: base model, method, output folder.
    job = run_dir.read_job()
    models_root = job.models_dir()
    base, location = resolve_base(job, models_root)
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
    if accelerator.device.type == "cpu" and n_total < TINY_MODEL_PARAMS:
        torch.set_num_threads(1)  # tiny matrices: syncing threads costs more than it saves

    # 3. Optimizer and schedule; on resume their states, the weights and the RNG.
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=config.weight_decay)
    scheduler = get_scheduler(
        config.lr_scheduler if config.lr_scheduler != "constant" else "constant_with_warmup",
        optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=total_steps,
    )  # fmt: skip
    start_step, ppl_before, eval_before = 0, None, None
    ckpt = resume_training(run_dir, model, optimizer, scheduler) if job.resume else None
    rng_state = None
    if ckpt is not None:
        rng_state = ckpt.extra_state
        start_step = ckpt.step
        eval_before = ckpt.meta.get("eval_loss_before")
        ppl_before = ckpt.meta.get("perplexity_before")
        print(f"text-lora: resumed from step {start_step} ({ckpt.path.name})", flush=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    raw = accelerator.unwrap_model(model)
    if eval_before is None:
        eval_before, _ = evaluate(raw, eval_ex, pad_id, config.batch_size, device)
        ppl_before = perplexity(eval_before)
    if rng_state is not None:
        restore_rng(rng_state)
    print(
        f"text-lora: {method} on {base_id} ({n_trainable:,} of {n_total:,} weights trainable), "
        f"{len(train_ex)} train / {len(eval_ex)} held-out sequences of ≤{block} tokens, "
        f"steps {start_step + 1}..{total_steps} on {device}, perplexity before {ppl_before:.2f}",
        flush=True,
    )

    def checkpoint(step: int) -> None:
        if not main:
            return
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                 **current_rng_state()}
        weights = {n: p for n, p in accelerator.unwrap_model(model).named_parameters() if p.requires_grad}
        meta = {"kind": "text-lora", "method": method, "base_model": base_id, "config": asdict(config),
                "eval_loss_before": eval_before, "perplexity_before": ppl_before}  # fmt: skip
        save_checkpoint(run_dir, step, weights, state, meta=meta, keep_last=config.keep_checkpoints)

    # 4. Train: one event per step; checkpoint, held-out loss and a sample every save_every steps.
    events = EventLog(run_dir, resume_step=start_step if job.resume else None, tensorboard=main)
    model.train()
    accum = config.gradient_accumulation_steps
    loss_value = float("nan")
    t_start = time.perf_counter()
    tokens_seen = 0
    saved_at = start_step
    try:
        for step in range(start_step + 1, total_steps + 1):
            t0 = time.perf_counter()
            step_loss, step_tokens = 0.0, 0
            for j in range(accum):
                idx = micro_batch_indices(
                    len(train_ex), config.batch_size, config.seed, (step - 1) * accum + j
                )
                idx = idx[accelerator.process_index :: accelerator.num_processes] or idx[:1]
                batch = {k: v.to(device) for k, v in collate([train_ex[i] for i in idx], pad_id).items()}
                with accelerator.autocast():
                    loss = model(**batch).loss / accum
                accelerator.backward(loss)
                step_loss += loss.item()
                step_tokens += int(batch["attention_mask"].sum())
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = step_loss
            if not math.isfinite(loss_value):
                raise ValueError(
                    f"The loss became {loss_value} at step {step}: training diverged. Lower the learning_rate "
                    "(or set mixed_precision to 'no') and start again."
                )
            tokens_seen += step_tokens
            elapsed = max(time.perf_counter() - t0, 1e-9)
            fields: dict[str, Any] = {
                "loss": round(loss_value, 6),
                "lr": scheduler.get_last_lr()[0],
                "tokens_per_s": round(step_tokens / elapsed, 1),
                "epoch": round(step * accum * config.batch_size / len(train_ex), 3),
            }
            if (config.save_every and step % config.save_every == 0) or step == total_steps:
                checkpoint(step)
                saved_at = step
                if main:
                    eval_loss, _ = evaluate(
                        accelerator.unwrap_model(model), eval_ex, pad_id, config.batch_size, device
                    )
                    if math.isfinite(eval_loss):
                        fields["eval_loss"] = round(eval_loss, 6)
                    fields["sample_text"] = sample_text(
                        accelerator.unwrap_model(model), tokenizer, prompt, config.seed, device
                    )
            if main:
                events.append(step, **fields, total_steps=total_steps)
            if run_dir.stop.requested:
                if saved_at != step:
                    checkpoint(step)
                print(f"text-lora: stopped at step {step} on request", flush=True)
                return {"status": "cancelled", "metrics": {"loss": loss_value, "method": method}}
    finally:
        events.close()
    train_time = time.perf_counter() - t_start

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
    print(
        f"text-lora: done in {train_time:.1f}s, perplexity {ppl_before:.2f} → {perplexity(eval_after):.2f}",
        flush=True,
    )
    if not main:
        return {"metrics": metrics, "artifact": None}
    out_dir = Path(job.output_dir) if job.output_dir else models_root / "trained" / job.job_id
    dataset_name = _dataset_name(Path(job.dataset_path))
    card = model_card(base_id, method, dataset_name, job.dataset_id, config, metrics, fmt)
    save_artifact(raw, tokenizer, out_dir, method=method, base_id=base_id, card=card)
    return {
        "metrics": metrics,
        "artifact": {
            "type": "text_adapter" if method == "lora" else "text_model",
            "path": str(out_dir),
            "base_model": base_id,
            "name": f"{dataset_name} · {method} on {base_id}"[:200],
        },
    }


def _dataset_name(dataset_path: Path) -> str:
    try:
        return str(json.loads((dataset_path / "manifest.json").read_text(encoding="utf-8"))["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return dataset_path.name


def save_artifact(model: Any, tokenizer: Any, out_dir: Path, *, method: str, base_id: str, card: str) -> None:
    """Write the adapter (PEFT format) or the full model (safetensors + tokenizer) into place atomically."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    if method == "lora":
        from engines.text.adapters import record_base_model

        model.save_pretrained(tmp, safe_serialization=True)
        record_base_model(tmp, base_id)
    else:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    (tmp / "README.md").write_text(card, encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)


def model_card(
    base_id: str, method: str, dataset_name: str, dataset_id: str | None, config: TextLoraConfig,
    metrics: dict[str, Any], fmt: str,
) -> str:  # fmt: skip
    what = "LoRA adapter" if method == "lora" else "fully fine-tuned model"
    params = {k: v for k, v in asdict(config).items() if v not in (None, "")}
    params.update(method=method, learning_rate=metrics["learning_rate"])  # what was used, "auto" resolved
    shown = ("perplexity_before", "perplexity_after", "eval_loss", "loss", "train_time_s", "tokens_per_s")
    lines = [
        "---",
        f"base_model: {base_id}",
        "library_name: peft" if method == "lora" else "library_name: transformers",
        "tags: [aigc-studio, text-generation, " + ("lora]" if method == "lora" else "fine-tuned]"),
        "---",
        "",
        f"# {dataset_name} — {what}",
        "",
        f"A {what} of `{base_id}`, trained with AIGC Studio (job kind `text-lora`).",
        "",
        f"- **Base model:** `{base_id}`",
        f"- **Dataset:** {dataset_name}"
        + (f" (`{dataset_id}`)" if dataset_id else "")
        + f", {fmt.replace('_', '/')}",
        f"- **Method:** {method}",
        "",
        "## Parameters",
        "",
        *[f"- `{k}`: {v}" for k, v in params.items()],
        "",
        "## Metrics (held-out split)",
        "",
        *[f"- `{k}`: {metrics[k]:.4g}" for k in shown if isinstance(metrics.get(k), int | float)],
        "",
    ]
    if method == "lora":
        lines += [
            "## Use",
            "",
            "```python",
            "from peft import PeftModel",
            "from transformers import AutoModelForCausalLM",
            "",
            f'base = AutoModelForCausalLM.from_pretrained("{base_id}")',
            'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
            "```",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
