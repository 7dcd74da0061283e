"""Text generation: `engines.text.TextEngine` against plain `model.generate` on the same model, prompt,
seed and sampling settings, with `min_new_tokens = max_new_tokens` so both make the same number of
tokens. Also: variations in one batched call against one call each, the held-out perplexity of a
trained model at reduced precision and in int8 against fp32, and for each batch-1 figure the fraction
of the memory-bandwidth limit it reaches: bytes of weights read per token × tokens/s ÷ the copy
bandwidth measured in the same run (one token at batch 1 reads every linear layer's weight once)."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from bench import fixtures
from bench.core import Context, Figure, device_sync, interleaved, median, paired_ratio, timed

PROMPT = "Every evening at six, Mara climbed the ninety-seven steps of the old lighthouse and"
SAMPLING = dict(temperature=0.8, top_p=0.95, top_k=50, repetition_penalty=1.0)
SEED = 7
GPT2_FIGURES = ("text.generate.bs1", "text.generate.bs8", "text.generate.bs1.reduced_precision",
                "text.generate.bs1.int8", "text.variations.batched_vs_sequential")
STARTER_FIGURES = ("text.generate.bs1.starter", "text.generate.bs8.starter")
PERPLEXITY_FIGURES = ("text.perplexity.reduced_precision_delta_pct", "text.int8.perplexity_delta_pct")


class PlainGenerate:
    """What a user of the library writes: tokenizer + AutoModelForCausalLM + model.generate."""

    def __init__(self, folder: Path, device: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device).eval()

    def __call__(self, batch: int, new_tokens: int) -> tuple[list[str], int]:
        import torch

        ids = self.tokenizer(PROMPT, return_tensors="pt").input_ids.repeat(batch, 1).to(self.device)  # (B, T)
        torch.manual_seed(SEED)
        out = self.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=new_tokens,
            min_new_tokens=new_tokens, pad_token_id=self.tokenizer.pad_token_id, **SAMPLING,
        )
        new = out[:, ids.shape[1]:]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True), int(new.numel())


class StudioGenerate:
    """The studio's engine, loaded once, asked through its one typed method."""

    def __init__(self, folder: Path, device: str, precision: str):
        from engines.text import TextEngine

        self.engine = TextEngine(folder, device=device, dtype=precision).load()

    def __call__(self, batch: int, new_tokens: int) -> tuple[list[str], int]:
        from engines.text import TextGenerationRequest

        request = TextGenerationRequest(prompt=PROMPT, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                        num_outputs=batch, seed=SEED, **SAMPLING)
        result = self.engine.generate(request)
        return result.texts, sum(result.new_tokens)


def _tokens_per_s(side, batch: int, new_tokens: int, sync) -> float:
    seconds, (_, tokens) = timed(lambda: side(batch, new_tokens), sync)
    return tokens / seconds


def _compare(name: str, studio, plain, batch: int, new_tokens: int, ctx: Context, note: str,
             check_same: bool = True, reps: int | None = None) -> Figure:
    sync = device_sync(ctx.device)
    same = None
    if check_same:  # same model, seed and settings in fp32 → the same text
        same = studio(batch, new_tokens)[0] == plain(batch, new_tokens)[0]
    runs = interleaved({"studio": lambda: _tokens_per_s(studio, batch, new_tokens, sync),
                        "plain": lambda: _tokens_per_s(plain, batch, new_tokens, sync)},
                       reps or ctx.reps, 0 if check_same else ctx.warmup)  # the check was the warm-up
    s, p = median(runs["studio"]), median(runs["plain"])
    detail: dict[str, Any] = {"batch": batch, "new_tokens": new_tokens, "runs": runs}
    if same is not None:
        detail["same_text_as_plain"] = same
    return Figure(name, s, "tok/s", p, paired_ratio(runs["studio"], runs["plain"], higher_is_better=True), note, detail)


def reduced_choice(device: str) -> str:
    """The reduced precision to compare: what `auto` picks here, else bf16 (then expect no gain)."""
    from engines.precision import dtype_name, reduced_dtype

    dtype = reduced_dtype(device)
    return {"bfloat16": "bf16", "float16": "fp16"}[dtype_name(dtype)] if dtype is not None else "bf16"


def copy_bandwidth(mb: int = 256, reps: int = 7) -> float:
    """Bytes/s of a plain tensor copy (read + write) of `mb` MB — far beyond any cache — with the
    threads the run uses: the memory roof decoding at batch 1 runs against. Median of `reps`."""
    import statistics

    import torch

    src = torch.ones(mb * 2**20 // 4)  # fp32
    dst = torch.empty_like(src)
    dst.copy_(src)  # fault the pages in before timing
    times = [timed(lambda: dst.copy_(src))[0] for _ in range(reps)]
    return 2 * src.numel() * 4 / statistics.median(times)


def weight_bytes_per_token(engine) -> int:
    """Bytes of weights one decoding step reads at batch 1: every 2-D linear weight (GPT-2's Conv1D,
    nn.Linear, the LM head) once, at the width it runs in (int8: 1 byte, bf16: 2, fp32: 4). The
    embeddings read one row per token: negligible."""
    import torch

    from engines.quantize import int8_bytes

    int8 = int8_bytes(engine.model)
    if int8:
        return int8
    total = 0
    for module in engine.model.modules():
        w = getattr(module, "weight", None)
        if isinstance(module, torch.nn.Embedding) or not isinstance(w, torch.Tensor) or w.dim() != 2:
            continue
        total += w.numel() * w.element_size()
    return total


def bandwidth_fraction(fig: Figure, engine, bandwidth: float) -> Figure:
    """Adds to a batch-1 figure the share of the memory-bandwidth limit it reaches."""
    if fig.value:
        per_token = weight_bytes_per_token(engine)
        limit = bandwidth / per_token  # tokens/s if every step only streamed the weights
        fig.detail.update(weight_bytes_per_token=per_token, copy_bandwidth_gb_s=round(bandwidth / 1e9, 2),
                          bandwidth_limit_tok_s=round(limit, 1), bandwidth_fraction=round(fig.value / limit, 3))
        fig.note += f"; {fig.value / limit:.0%} of the bandwidth limit ({limit:.0f} tok/s at {bandwidth / 1e9:.0f} GB/s)"
    return fig


def run_gpt2(ctx: Context, names: set[str]) -> list[Figure]:
    """The GPT-2-sized figures (124M weights, random): what a real small model costs to run."""
    folder = fixtures.gpt2_sized(ctx)
    n1, n8 = (16, 16) if ctx.quick else (32, 16)
    figures: list[Figure] = []
    need_plain = names & {"text.generate.bs1", "text.generate.bs8", "text.generate.bs1.reduced_precision",
                          "text.generate.bs1.int8"}
    plain = PlainGenerate(folder, ctx.device) if need_plain else None
    fp32 = StudioGenerate(folder, ctx.device, "fp32") if names & {"text.generate.bs1", "text.generate.bs8"} else None
    reduced = reduced_choice(ctx.device)
    rp = None
    if names & {"text.generate.bs1.reduced_precision", "text.variations.batched_vs_sequential"}:
        rp = StudioGenerate(folder, ctx.device, reduced)
    bandwidth = copy_bandwidth() if ctx.device == "cpu" else None
    if "text.generate.bs1" in names:
        fig = _compare("text.generate.bs1", fp32, plain, 1, n1, ctx, "GPT-2 small shape, fp32 both, batch 1")
        figures.append(bandwidth_fraction(fig, fp32.engine, bandwidth) if bandwidth else fig)
    if "text.generate.bs8" in names:
        figures.append(_compare("text.generate.bs8", fp32, plain, 8, n8, ctx,
                                "GPT-2 small shape, fp32 both, num_outputs=8 vs 8 rows"))
    if "text.generate.bs1.reduced_precision" in names:
        fig = _compare("text.generate.bs1.reduced_precision", rp, plain, 1, n1, ctx,
                       f"studio {rp.engine.dtype} ({rp.engine.packed_layers} prepacked layers) vs plain fp32, "
                       "batch 1", check_same=False)
        figures.append(bandwidth_fraction(fig, rp.engine, bandwidth) if bandwidth else fig)
    if "text.generate.bs1.int8" in names:
        figures.append(int8_figure(folder, plain, n1, ctx, bandwidth))
    if "text.variations.batched_vs_sequential" in names:
        sync = device_sync(ctx.device)

        def sequential() -> float:
            seconds, results = timed(lambda: [rp(1, n8) for _ in range(8)], sync)
            return sum(tokens for _, tokens in results) / seconds

        runs = interleaved({"batched": lambda: _tokens_per_s(rp, 8, n8, sync), "sequential": sequential},
                           max(3, ctx.reps - 2), ctx.warmup)
        b, s = median(runs["batched"]), median(runs["sequential"])
        figures.append(Figure("text.variations.batched_vs_sequential", b, "tok/s", s,
                              paired_ratio(runs["batched"], runs["sequential"], higher_is_better=True),
                              f"studio {rp.engine.dtype}: num_outputs=8 in one call vs 8 calls of 1 (baseline)",
                              {"new_tokens": n8, "runs": runs}))
    return figures


def int8_figure(folder: Path, plain, new_tokens: int, ctx: Context, bandwidth: float | None) -> Figure:
    """The studio's int8 text precision (weight-only, guarded at load) against plain fp32, batch 1."""
    from engines.quantize import Int8Refused, int8_kernel

    name = "text.generate.bs1.int8"
    try:
        int8 = StudioGenerate(folder, ctx.device, "int8")
    except Int8Refused as exc:
        return Figure(name, None, "tok/s", note=f"int8 refused: {exc}")
    fig = _compare(name, int8, plain, 1, new_tokens, ctx,
                   f"studio int8 ({int8_kernel()} kernel, int8 weights) vs plain fp32, batch 1", check_same=False)
    fig.detail["load_check"] = {"perplexity_fp32": int8.engine.quality.perplexity_fp32,
                                "perplexity_int8": int8.engine.quality.perplexity_int8}
    return bandwidth_fraction(fig, int8.engine, bandwidth) if bandwidth else fig


def run_starter(ctx: Context, names: set[str]) -> list[Figure]:
    """The tiny starter GPT-2 (what the studio runs offline): here Python, not arithmetic, is the cost."""
    folder = fixtures.starter(ctx, "text")
    n1, n8 = (16, 16) if ctx.quick else (32, 32)
    plain = PlainGenerate(folder, ctx.device)
    studio = StudioGenerate(folder, ctx.device, "fp32")
    figures = []
    reps = 4 * ctx.reps  # a call takes tens of milliseconds: more repetitions steady the median
    if "text.generate.bs1.starter" in names:
        figures.append(_compare("text.generate.bs1.starter", studio, plain, 1, n1, ctx, "starter GPT-2, fp32, batch 1",
                                reps=reps))
    if "text.generate.bs8.starter" in names:
        figures.append(_compare("text.generate.bs8.starter", studio, plain, 8, n8, ctx, "starter GPT-2, fp32, batch 8",
                                reps=reps))
    return figures


# -- perplexity at reduced precision -----------------------------------------------------------------
def trained_starter(ctx: Context) -> tuple[Path, list[list[int]]]:
    """The starter GPT-2 trained (all weights, plain loop) on 90 % of the corpus: (folder, held-out blocks)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = fixtures.starter(ctx, "text")
    tokenizer = AutoTokenizer.from_pretrained(base)
    paragraphs = fixtures.corpus_paragraphs()
    random.Random(0).shuffle(paragraphs)
    n_held = max(2, len(paragraphs) // 10)
    block = 64

    def blocks(texts: list[str]) -> list[list[int]]:
        stream: list[int] = []
        for ids in tokenizer(texts, add_special_tokens=False).input_ids:
            stream += ids + [tokenizer.eos_token_id]
        return [stream[i : i + block] for i in range(0, len(stream) - block + 1, block)]

    held, train = blocks(paragraphs[:n_held]), blocks(paragraphs[n_held:])
    folder = ctx.work_dir / "starter-trained"
    if (folder / "done").is_file():
        return folder, held
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).to(ctx.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.tensor(train)  # (N, block)
    g = torch.Generator().manual_seed(0)
    for _ in range(150 if ctx.quick else 400):
        batch = data[torch.randint(0, len(data), (16,), generator=g)].to(ctx.device)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval().save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "done").write_text("ok\n", encoding="utf-8")
    return folder, held


def held_out_perplexity(engine, blocks: list[list[int]], device: str) -> float:
    """exp(mean next-token NLL) of the engine's model, as loaded (its dtype, its fast path)."""
    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(blocks), 16):
            ids = torch.tensor(blocks[i : i + 16], device=device)  # (B, T)
            logits = engine.model(input_ids=ids).logits[:, :-1].float()  # (B, T-1, V)
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                                    reduction="sum")
            total += nll.item()
            count += ids[:, 1:].numel()
    return math.exp(total / count)


def run_perplexity(ctx: Context, names: set[str]) -> list[Figure]:
    from engines.text import TextEngine

    folder, held = trained_starter(ctx)
    reduced = reduced_choice(ctx.device)
    fp32 = TextEngine(folder, device=ctx.device, dtype="fp32").load()
    rp = TextEngine(folder, device=ctx.device, dtype=reduced).load()
    p32 = held_out_perplexity(fp32, held, ctx.device)
    prp = held_out_perplexity(rp, held, ctx.device)
    delta = 100.0 * (prp - p32) / p32
    base_ppl = held_out_perplexity(TextEngine(fixtures.starter(ctx, "text"), device=ctx.device, dtype="fp32").load(),
                                   held, ctx.device)
    figures = []
    if "text.int8.perplexity_delta_pct" in names:
        figures.append(int8_perplexity(folder, held, p32, ctx))
    return figures + [Figure("text.perplexity.reduced_precision_delta_pct", delta, "%", None, None,
                   f"trained starter GPT-2, held-out perplexity {p32:.3f} (fp32) → {prp:.3f} ({rp.dtype})",
                   {"perplexity_fp32": p32, "perplexity_reduced": prp, "dtype": rp.dtype,
                    "perplexity_untrained": base_ppl, "held_out_tokens": len(held) * 63})]


def int8_perplexity(folder: Path, held: list[list[int]], p32: float, ctx: Context) -> Figure:
    """The trained starter's held-out perplexity with int8 weights against fp32 (the load guard's own
    bound is not applied here: the figure is what int8 costs, whether or not the guard would allow it)."""
    from engines import quantize
    from engines.text import TextEngine

    name = "text.int8.perplexity_delta_pct"
    if quantize.int8_available(ctx.device):
        return Figure(name, None, "%", note=quantize.int8_available(ctx.device) or "")
    engine = TextEngine(folder, device=ctx.device, dtype="fp32").load()
    quantize.quantize_linear_layers_int8(engine.model)
    p8 = held_out_perplexity(engine, held, ctx.device)
    delta = 100.0 * (p8 - p32) / p32
    return Figure(name, delta, "%", None, None,
                  f"trained starter GPT-2, held-out perplexity {p32:.3f} (fp32) → {p8:.3f} (int8, "
                  f"{quantize.int8_kernel()})", {"perplexity_fp32": p32, "perplexity_int8": p8})
