"""Weight-only int8 serving on the CPU, and the quality guard that decides whether it may serve.

    n = quantize_linear_layers_int8(model)      # every nn.Linear / GPT-2 Conv1D now reads int8 weights
    check = int8_quality_check(model, tokenizer) # perplexity on HELD_OUT_LINES, fp32 vs int8

Which kernel, and why (measured on this CPU, GPT-2-small random weights, batch-1 greedy decoding of
32 tokens, one thread, interleaved medians — see docs/notes or bench/text.py):

    fp32 (plain)                                       1.00×
    bf16, prepacked oneDNN (engines/precision.py)      1.63×
    torchao Int8WeightOnlyConfig, eager                0.32× (fp32 act.) / 0.45× (bf16 act.)
    torchao Int8DynamicActivationInt8WeightConfig      0.16×
    aten._weight_int8pack_mm, bf16 activations         1.85×
    aten quantized::linear_dynamic (fbgemm, per-channel int8 weights, activations quantised per call)  2.50×

fbgemm's path builds on qint8 tensors, which torch 2.13 marks deprecated (pytorch#184982): it is used
while present because it is the only one past 2× here; `int8_kernel()` probes it and falls back to
`_weight_int8pack_mm` on the day it is gone, with no change to callers.

torchao's eager CPU paths convert the whole int8 weight to float on every call (they are written to be
fused by torch.compile, which costs minutes per model and re-specialises as the KV cache grows), so
they read *more* bytes than fp32. The ATen kernels are torch's own and maintained with it: fbgemm's
dynamic int8 linear (the kernel behind the deprecated `torch.ao.quantization.quantize_dynamic`
Python API — we call the op, not that API) is the fastest, and `_weight_int8pack_mm` (the one
torchao's compiled CPU path lowers to) is the fallback where fbgemm is absent (Arm, builds without
it). The layers keep their type and weights, so PEFT adapters still attach and merge; the int8 copy
is held beside them, like the bf16 prepacked copy.

fbgemm's op is dynamic: besides the int8 weights it rounds each call's activations to int8 (per tensor);
`_weight_int8pack_mm` keeps them bf16. Both read one byte per weight — what batch-1 decoding is bound by.

Exports (the `export` job) store int8 weights + per-channel scales in their own safetensors file, read
back by `load_int8_export` (below: why not transformers' TorchAoConfig).

Nothing here imports the studio.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

# Fixed held-out lines for the load-time guard: ordinary English, none of it in the starter corpus.
HELD_OUT_LINES = (
    "The river had frozen early that year, and the children skated to school across it.",
    "She folded the letter twice, put it in her coat pocket, and walked out into the rain.",
    "A small bakery on the corner sold bread until noon and then closed for the rest of the day.",
    "When the power went out, we lit candles and told stories until everyone fell asleep.",
    "The old map showed a road through the forest that nobody in the village remembered.",
    "He planted tomatoes along the fence because it was the only place that got sun all afternoon.",
)
MAX_PERPLEXITY_INCREASE_PCT = 3.0  # int8 may serve when held-out perplexity rises by at most this much


class Int8Refused(ValueError):
    """int8 can't serve this model here: the message says why (device, kernel, or quality)."""


@dataclass
class QualityCheck:
    perplexity_fp32: float
    perplexity_int8: float
    bound_pct: float = MAX_PERPLEXITY_INCREASE_PCT

    @property
    def delta_pct(self) -> float:
        return 100.0 * (self.perplexity_int8 - self.perplexity_fp32) / self.perplexity_fp32

    @property
    def passed(self) -> bool:
        return math.isfinite(self.perplexity_int8) and self.delta_pct <= self.bound_pct

    def reason(self) -> str:
        return (f"int8 raises held-out perplexity by {self.delta_pct:.1f}% ({self.perplexity_fp32:.2f} → "
                f"{self.perplexity_int8:.2f}), over the {self.bound_pct:g}% bound; use fp32 or bf16 for this model.")


# -- the kernels -------------------------------------------------------------------------------------
class _Int8Linear:
    """Replaces one linear layer's `forward`: y = x Wᵀ + b with W held as per-output-channel int8."""

    def __init__(self, weight_nk, bias, kernel: str):
        import torch

        w = weight_nk.detach().float().contiguous()  # (N, K)
        scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # (N,) symmetric per output channel
        self.kernel = kernel
        self.out_features = w.shape[0]
        self.bias = None if bias is None else bias.detach().float()
        if kernel == "fbgemm":
            with warnings.catch_warnings():  # qint8 tensors are deprecated in torch 2.13: see the module doc
                warnings.simplefilter("ignore", UserWarning)
                q = torch.quantize_per_channel(w, scale.double(), torch.zeros_like(scale, dtype=torch.long), 0,
                                               torch.qint8)
                self.packed = torch.ops.quantized.linear_prepack(q, self.bias)
        else:  # int8pack: bf16 activations, int8 weights, bf16 per-channel scales
            self.packed = (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8)  # (N, K)
            self.scale = scale.bfloat16()
        self.nbytes = w.numel()  # one byte per weight

    def __call__(self, x):
        import torch

        shape = x.shape[:-1] + (self.out_features,)
        flat = x.reshape(-1, x.shape[-1]).float().contiguous()  # (N_tokens, K)
        if self.kernel == "fbgemm":
            y = torch.ops.quantized.linear_dynamic(flat, self.packed, _reduce_range())
        else:
            y = torch._weight_int8pack_mm(flat.bfloat16(), self.packed, self.scale).float()
            if self.bias is not None:
                y = y + self.bias
        return y.view(shape).to(x.dtype)


@functools.cache
def _reduce_range() -> bool:
    """fbgemm's 7-bit activations: needed on CPUs without VNNI, where u8×s8 pairs saturate int16 sums."""
    from engines.precision import cpu_flags

    return not (cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


@functools.cache
def int8_kernel() -> str | None:
    """'fbgemm' or 'int8pack': the fastest int8 linear that is present and right on this build."""
    import torch

    g = torch.Generator().manual_seed(0)
    w = torch.randn(24, 16, generator=g)
    x = torch.randn(3, 16, generator=g)
    b = torch.randn(24, generator=g)
    want = torch.nn.functional.linear(x, w, b)
    for kernel in ("fbgemm", "int8pack"):
        try:
            got = _Int8Linear(w, b, kernel)(x)
            if (got - want).abs().max() <= 0.05 * want.abs().max():  # int8 rounding: a few % of the range
                return kernel
        except (RuntimeError, AttributeError, NotImplementedError):  # op missing in this build
            continue
    return None


def int8_available(device: str) -> str | None:
    """None when int8 serving runs on this device, else why not."""
    if device != "cpu":
        return f"int8 serving runs on the CPU here, not on {device}: pick bf16 there."
    if int8_kernel() is None:
        return "this PyTorch build has no int8 linear kernel for the CPU (neither fbgemm nor _weight_int8pack_mm)."
    return None


def quantize_linear_layers_int8(model) -> int:
    """Give every linear layer (nn.Linear, GPT-2's Conv1D) of an fp32 CPU model an int8 forward; returns
    how many. Reversible with `restore_linear_layers`."""
    import torch

    kernel = int8_kernel()
    if kernel is None:
        return 0
    count = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.device.type != "cpu" or weight.dim() != 2:
            continue
        if isinstance(module.__dict__.get("forward"), _Int8Linear):
            continue
        bias = getattr(module, "bias", None)
        if type(module) is torch.nn.Linear:
            module.forward = _Int8Linear(weight, bias, kernel)
        elif type(module).__name__ == "Conv1D":  # transformers' GPT-2 layer: W is (in, out)
            module.forward = _Int8Linear(weight.t(), bias, kernel)
        else:
            continue
        count += 1
    return count


def restore_linear_layers(model) -> None:
    """Undo `quantize_linear_layers_int8`: the layers run their own weights again."""
    for module in model.modules():
        if isinstance(module.__dict__.get("forward"), _Int8Linear):
            del module.forward


def int8_bytes(model) -> int:
    """Bytes held by the int8 copies (on top of the model's parameters)."""
    return sum(m.forward.nbytes for m in model.modules() if isinstance(m.__dict__.get("forward"), _Int8Linear))


# -- the quality guard -------------------------------------------------------------------------------
def lines_perplexity(model, tokenizer, lines=HELD_OUT_LINES) -> float:
    """Token-weighted perplexity of the model on these lines, each scored on its own."""
    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for line in lines:
            ids = tokenizer(line, return_tensors="pt").input_ids[:, : 1024]  # (1, T)
            if ids.shape[1] < 2:
                continue
            loss = model(input_ids=ids, labels=ids).loss.float().item()
            total += loss * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    return math.exp(total / max(count, 1))


def int8_quality_check(model, tokenizer, lines=HELD_OUT_LINES) -> QualityCheck:
    """Perplexity on the held-out lines with the model's own weights, then with int8 ones (the model
    must be fp32 on the CPU and not yet quantised); leaves the int8 forwards in place."""
    before = lines_perplexity(model, tokenizer, lines)
    quantize_linear_layers_int8(model)
    after = lines_perplexity(model, tokenizer, lines)
    return QualityCheck(perplexity_fp32=round(before, 4), perplexity_int8=round(after, 4),
                        bound_pct=MAX_PERPLEXITY_INCREASE_PCT)


# -- int8 exports ------------------------------------------------------------------------------------
# transformers' torchao integration quantises nn.Linear only, so GPT-2's Conv1D layers would stay float
# in a TorchAoConfig export; an export therefore stores each linear weight as int8 + one scale per
# output channel in its own safetensors file, and `load_int8_export` rebuilds the model with plain
# transformers (from_config) and these weights.
INT8_FILE = "model-int8.safetensors"  # not model.safetensors: plain from_pretrained refuses, never half-loads
INT8_MANIFEST = "quantization.json"


def _linear_weights(model):
    """(name, module, W as (out, in)) for every nn.Linear / Conv1D whose weight is not tied elsewhere."""
    import torch

    tied = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    for name, module in model.named_modules():
        w = getattr(module, "weight", None)
        if not isinstance(w, torch.Tensor) or w.dim() != 2 or id(w) in tied:
            continue
        if type(module) is torch.nn.Linear:
            yield name, module, w.detach()
        elif type(module).__name__ == "Conv1D":
            yield name, module, w.detach().t()


def prunable_layers(model) -> list:
    """The layers magnitude pruning applies to: every linear layer except a head tied to the embeddings."""
    return [module for _, module, _ in _linear_weights(model)]


def save_int8_export(model, folder, float_dtype) -> dict:
    """Write the model's linear weights as int8 (symmetric, per output channel) and every other tensor in
    `float_dtype` to `folder/model-int8.safetensors`; returns the manifest written beside it."""
    import json
    from pathlib import Path

    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    quantised = {}
    tensors = {}
    for name, module, w_nk in _linear_weights(model):
        w = w_nk.float()
        scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # (out,)
        tensors[f"{name}.weight"] = (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8).contiguous()
        tensors[f"{name}.weight_scale"] = scale.contiguous()
        quantised[f"{name}.weight"] = "conv1d" if type(module).__name__ == "Conv1D" else "linear"
    seen: set[int] = set()
    for key, value in model.state_dict(keep_vars=False).items():
        if key in tensors or id(value) in seen or value.data_ptr() in seen:
            continue  # a tied weight is saved once, under its first name
        seen.update((id(value), value.data_ptr()))
        tensors[key] = value.detach().to(float_dtype if value.is_floating_point() else value.dtype).contiguous()
    save_file(tensors, str(folder / INT8_FILE), metadata={"format": "pt"})
    manifest = {"format": "int8-weight-only", "scheme": "symmetric, per output channel", "layers": quantised,
                "float_dtype": str(float_dtype).removeprefix("torch."),
                "load": "from engines.quantize import load_int8_export; model = load_int8_export(folder)"}
    (folder / INT8_MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def load_int8_export(folder, *, fast: bool = True):
    """The model of an int8 export: built with transformers from its config.json, weights dequantised
    into it; with `fast` on a CPU, the linear layers then run on the int8 kernel."""
    import json
    from pathlib import Path

    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = Path(folder)
    manifest = json.loads((folder / INT8_MANIFEST).read_text(encoding="utf-8"))
    tensors = load_file(str(folder / INT8_FILE))
    dtype = getattr(torch, manifest["float_dtype"])
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder), dtype=dtype)
    state = {}
    for key, value in tensors.items():
        if key.endswith(".weight_scale"):
            continue
        if key in manifest["layers"]:
            w = value.float() * tensors[key.removesuffix("weight") + "weight_scale"][:, None]  # (out, in)
            value = w.t() if manifest["layers"][key] == "conv1d" else w
        state[key] = value.to(dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    if unexpected or [k for k in missing if k not in tied and not k.endswith(".attn.bias")]:
        raise ValueError(f"{folder} does not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.eval()
    if fast and dtype == torch.float32:
        quantize_linear_layers_int8(model)
    return model
