"""The model side of text training (`text-lora`, and the feedback and reward trainers): which base
model a job starts from, the model built on it (a LoRA adapter or all weights), how it is scored
(held-out perplexity, a seeded sample), and how the result is saved (PEFT adapter or model folder,
with a model card).

Nothing here imports the studio.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.text.train_data import Example, collate
from engines.training import atomic_folder

if TYPE_CHECKING:
    from engines.registry import ModelSpec

GPT2_TARGETS = ["c_attn", "c_proj"]
EVAL_MAX_EXAMPLES = 256  # held-out sequences scored for perplexity (a cap keeps big datasets quick)
SAMPLE_NEW_TOKENS = 32


# -- the base model -------------------------------------------------------------------------------
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


def load_tokenizer(location: str) -> Any:
    """The base model's tokenizer, padding with EOS where it has no pad token (GPT-2)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def lora_targets(target_modules: list[str] | None, model: Any) -> list[str] | None:
    """The modules a LoRA adapts: the ones asked for, else GPT-2's attention and projections, else peft's choice."""
    if target_modules:
        return list(target_modules)
    return list(GPT2_TARGETS) if model.config.model_type == "gpt2" else None


def build_model(location: str, method: str, config: Any) -> tuple[Any, Any]:
    """(model, tokenizer): the base in float32, wrapped in a fresh LoRA adapter for method 'lora'."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(location)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            task_type="CAUSAL_LM",
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=lora_targets(config.target_modules, model),
            fan_in_fan_out=model.config.model_type == "gpt2",  # GPT-2's Conv1D stores weights transposed
        )
        model = get_peft_model(model, lora)
    return model, tokenizer


def context_length(model: Any) -> int:
    cfg = model.config
    return int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None) or 1024)


# -- scoring --------------------------------------------------------------------------------------
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


# -- the artifact ---------------------------------------------------------------------------------
def save_artifact(model: Any, tokenizer: Any, out_dir: Path, *, method: str, base_id: str, card: str) -> None:
    """Write the adapter (PEFT format) or the full model (safetensors + tokenizer) into place atomically."""
    with atomic_folder(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if method == "lora":
            from engines.text.adapters import record_base_model

            record_base_model(tmp, base_id)
        else:
            tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(card, encoding="utf-8")


def model_card(
    base_id: str, method: str, dataset_name: str, dataset_id: str | None, config: Any,
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
