"""Job kind `export`: a text model (or a base merged with its adapter) compressed for deployment —
magnitude pruning and weight-only int8 — with what the compression cost, measured beside the original.

    1. load the base (fp32) and fold the adapter in (inputs/adapter, copied by the studio)
    2. score the original: held-out perplexity, tokens/s at batch 1, size on disk
    3. prune: every linear layer (not a head tied to the embeddings) loses the `sparsity` share of its
       smallest-magnitude weights (torch.nn.utils.prune.l1_unstructured, then made permanent)
    4. save: plain transformers folder in `precision`, or with `quantization=int8` the linear weights
       as int8 + per-channel scales (engines/quantize.py says why not TorchAoConfig: GPT-2's Conv1D)
    5. reload the saved folder as a user would and score it the same way as the original

The held-out text is the dataset the user picked (the rows a default `text-lora` job holds out), else
engines/quantize.HELD_OUT_LINES. Speed is measured interleaved (original, export, original …) and the
medians reported, so load on a shared machine hits both alike.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engines.training import EventLog, RunDir, trainer_main

QUANTIZATIONS = ("none", "int8", "int4")  # what a user picks; int4 only where `quantization_support` allows
MAX_SPARSITY = 0.95


@dataclass
class ExportConfig:
    quantization: str = "int8"  # none | int8 (weight-only, per output channel) | int4 (where the device supports it)
    sparsity: float = 0.0  # share of each linear layer's weights zeroed by magnitude (unstructured), 0 to 0.95
    precision: str = "fp32"  # fp32 | bf16 | fp16: the weights that stay float (all of them with quantization none)
    adapter: str | None = None  # a text adapter id to merge into the base first (the studio checks its base)
    speed_tokens: int = 32  # tokens decoded at batch 1 to measure tokens/s
    speed_reps: int = 3  # timed decodes per model (interleaved; the median counts)
    max_eval_examples: int = 64  # held-out sequences scored for perplexity

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not '{self.quantization}'")
        if not 0.0 <= float(self.sparsity) <= MAX_SPARSITY:
            raise ValueError(f"sparsity must be between 0 and {MAX_SPARSITY} (it was {self.sparsity})")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be fp32, bf16 or fp16, not '{self.precision}'")
        for name in ("speed_tokens", "speed_reps", "max_eval_examples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


CONFIG_CLASS = ExportConfig


def quantization_support(quantization: str, device: str) -> str | None:
    """None when this quantization can be exported and measured on `device`, else why not."""
    from engines.quantize import int8_available

    if quantization == "int4":
        return (f"int4 is not supported on this device ({device}): torchao's int4 weight-only kernels need "
                "a CUDA GPU (or its CPU-specific packing, absent from this build). Pick int8.")
    if quantization == "int8":
        return int8_available("cpu")  # the export is measured on the CPU wherever the studio runs
    return None


def _relative(path: Path, data_dir: Path) -> str:
    """The path as the studio shows paths: relative to its data dir when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(data_dir)) if path.is_relative_to(data_dir) else str(path)


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


def tokens_per_s(model, ids, new_tokens: int) -> float:
    import torch

    t0 = time.perf_counter()
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                       max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0)
    return new_tokens / (time.perf_counter() - t0)


def _eval_data(tokenizer, model, dataset_path: str | None, limit: int) -> list:
    """Held-out examples of the user's dataset (a default text-lora job's split), else the fixed lines."""
    from engines.quantize import HELD_OUT_LINES
    from engines.text.train import TextLoraConfig
    from engines.text.train_data import build_examples, read_rows, split_rows
    from engines.text.train_model import context_length

    block = min(TextLoraConfig().block_size, context_length(model))
    if dataset_path:
        rows, fmt = read_rows(Path(dataset_path))
        train_rows, held_rows = split_rows(rows, TextLoraConfig().eval_fraction, TextLoraConfig().seed)
        examples = build_examples(held_rows or train_rows, fmt, tokenizer, block)
    else:
        examples = build_examples([{"text": t} for t in HELD_OUT_LINES], "documents", tokenizer, block)
    if not examples:
        raise ValueError("The evaluation dataset gives no text to score (are its rows empty?).")
    return examples[:limit]


def _perplexity(model, examples, pad_id: int) -> float:
    import torch

    from engines.text.train_model import evaluate, perplexity

    loss, _ = evaluate(model, examples, pad_id, batch_size=8, device=torch.device("cpu"))
    return round(perplexity(loss), 4)


def run(config: ExportConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from torch.nn.utils import prune
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engines.precision import DTYPE_NAMES, pack_linear_layers
    from engines.quantize import load_int8_export, prunable_layers, save_int8_export
    from engines.text.train_model import resolve_base

    job = run_dir.read_job()
    why_not = quantization_support(config.quantization, "cpu")
    if why_not:
        raise ValueError(why_not)
    spec, location = resolve_base(job, job.models_dir())
    base_id = spec.id
    log = EventLog(run_dir, tensorboard=False)
    total = 5

    # 1. The original: the base, with the adapter folded in.
    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32).eval()
    adapter_folder = run_dir.path / "inputs" / "adapter"
    if adapter_folder.is_dir():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_folder)).merge_and_unload().eval()
    original = run_dir.path / "original"
    model.save_pretrained(original, safe_serialization=True)
    tokenizer.save_pretrained(original)
    log.append(1, total_steps=total, progress=1 / total, stage="loaded", message=f"loaded {base_id}" + (
        f" + adapter {config.adapter}" if adapter_folder.is_dir() else ""))

    # 2. Held-out text; the original's perplexity.
    examples = _eval_data(tokenizer, model, job.dataset_path, config.max_eval_examples)
    ppl_original = _perplexity(model, examples, tokenizer.pad_token_id)
    log.append(2, total_steps=total, progress=2 / total, stage="scored original", perplexity=ppl_original)

    # 3. Prune by magnitude, permanently (the mask is folded into the weight).
    layers = prunable_layers(model)
    if config.sparsity > 0:
        for module in layers:
            prune.l1_unstructured(module, "weight", amount=float(config.sparsity))
            prune.remove(module, "weight")
    zeros = sum(int((m.weight == 0).sum()) for m in layers)
    weights = sum(m.weight.numel() for m in layers)
    log.append(3, total_steps=total, progress=3 / total, stage="pruned", sparsity=round(zeros / max(weights, 1), 4))

    # 4. Save as a deployable folder.
    out = Path(job.output_dir or run_dir.path / "export")  # models/trained/<job-id>/ in the studio
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    float_dtype = getattr(torch, DTYPE_NAMES[config.precision])
    if config.quantization == "int8":
        model.config.save_pretrained(tmp)
        if model.generation_config is not None:
            model.generation_config.save_pretrained(tmp)
        save_int8_export(model, tmp, float_dtype)
    else:
        model.to(float_dtype).save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    meta = {"kind": "export", "base_model": base_id, "adapter": config.adapter, "config": asdict(config)}
    (tmp / "export.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    log.append(4, total_steps=total, progress=4 / total, stage="saved", path=str(out))

    # 5. Reload both as a user would; perplexity and speed side by side.
    if config.quantization == "int8":
        exported = load_int8_export(out)
    else:
        exported = AutoModelForCausalLM.from_pretrained(out, dtype=float_dtype).eval()
        if float_dtype == torch.bfloat16:
            pack_linear_layers(exported)
    reference = AutoModelForCausalLM.from_pretrained(original, dtype=torch.float32).eval()
    ppl_export = _perplexity(exported, examples, tokenizer.pad_token_id)
    ids = torch.tensor([examples[0][0][:16]])  # (1, T): the prompt both models continue
    speeds: dict[str, list[float]] = {"original": [], "export": []}
    tokens_per_s(reference, ids, 2), tokens_per_s(exported, ids, 2)  # warm-up
    for _ in range(config.speed_reps):
        speeds["original"].append(tokens_per_s(reference, ids, config.speed_tokens))
        speeds["export"].append(tokens_per_s(exported, ids, config.speed_tokens))
    size_original, size_export = folder_bytes(original), folder_bytes(out)
    shutil.rmtree(original, ignore_errors=True)
    metrics = {
        "size_mb": round(size_export / 1e6, 3), "size_mb_original": round(size_original / 1e6, 3),
        "tokens_per_s": round(statistics.median(speeds["export"]), 2),
        "tokens_per_s_original": round(statistics.median(speeds["original"]), 2),
        "perplexity": ppl_export, "perplexity_original": ppl_original,
        "perplexity_delta_pct": round(100.0 * (ppl_export - ppl_original) / ppl_original, 3),
        "sparsity": round(zeros / max(weights, 1), 4), "quantization": config.quantization,
        "precision": config.precision, "held_out_examples": len(examples),
        "held_out": "dataset" if job.dataset_path else "built-in lines",
        "base_model": base_id, "adapter": config.adapter, "export_path": _relative(out, job.models_dir().resolve().parent),
    }
    log.append(5, total_steps=total, progress=1.0, stage="measured", **metrics)
    log.close()
    # No `adapters` row: an export is a deliverable to copy out, not a version the studio serves (its int8
    # folder is not a plain transformers checkpoint); the job's metrics say where it is.
    return {"metrics": metrics, "artifact": None}


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
