"""Numeric precision per engine: what `auto` means on this device, and the CPU fast path for bf16.

    resolve_precision("auto", "cuda")  → torch.bfloat16 (float16 on GPUs without bf16)
    resolve_precision("auto", "cpu")   → torch.bfloat16 on CPUs with native bf16 (AVX512-BF16 / AMX /
                                         Arm BF16) for models of ≥ TINY_MODEL_PARAMS (20M) weights, else fp32
    resolve_precision("fp32", …)       → torch.float32, anywhere
    resolve_precision("int8", "cpu")   → torch.float32: int8 is weight-only for text on the CPU; the
                                         activations run fp32 and the linear layers read int8 weights
                                         (engines/quantize.py, which also holds the quality guard)

Reduced precision only pays where the hardware has the instructions: on a CPU without them bf16
runs *slower* than fp32, and on tiny models (the starters) the time goes to Python, not to
arithmetic, so `auto` keeps fp32 there. An explicit `bf16`/`fp16` is always honoured.

On a CPU, PyTorch's plain bf16 matrix-vector product (what generation at batch 1 does) repacks the
weight on every call and ends up no faster than fp32. `pack_linear_layers` prepacks each linear
layer's weight once into oneDNN's blocked layout, the same thing `torch.compile(freezing=True)`
does, minus the compile: generation then reads half the bytes of fp32 per token.

Nothing here imports the studio.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any

from engines.registry import TINY_MODEL_PARAMS

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")  # what a user picks (int8: text only)
WEIGHT_ONLY = ("int8",)  # choices that quantise the weights, not the whole model's dtype
ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16", "fp32": "fp32",
           "bf16": "bf16", "fp16": "fp16", "auto": "auto", "int8": "int8"}
DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "int8": "float32"}  # int8: compute dtype


def normalize(choice: str) -> str:
    """'auto' | 'fp32' | 'bf16' | 'fp16' | 'int8' from any accepted spelling (also 'float32', 'bfloat16' …)."""
    key = str(choice).strip().lower().removeprefix("torch.")
    if key not in ALIASES:
        raise ValueError(f"Unknown precision '{choice}': use one of {', '.join(PRECISIONS)}.")
    return ALIASES[key]


# -- what the device can do --------------------------------------------------------------------------
@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (x86 `flags`, Arm `Features`); empty where unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_bf16_native() -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16, AMX-BF16, Arm BF16) and PyTorch's
    oneDNN uses it; macOS on Apple silicon has it too (reported by the OS, not /proc)."""
    import torch

    flags = cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16"}:
        return bool(torch.backends.mkldnn.is_available())
    if "bf16" in flags:  # aarch64 Features line
        return True
    return platform.system() == "Darwin" and platform.machine() == "arm64"


@functools.cache
def cpu_fp16_native() -> bool:
    return bool(cpu_flags() & {"avx512_fp16", "amx_fp16"})


def capabilities(device: str) -> dict[str, Any]:
    """What the device offers, for the Settings tab and the health endpoint."""
    import torch

    if device == "cuda":
        return {"device": "cuda", "name": torch.cuda.get_device_name(0),
                "bf16": bool(torch.cuda.is_bf16_supported()), "fp16": True}
    if device == "mps":
        return {"device": "mps", "name": "Apple GPU", "bf16": False, "fp16": True}
    return {"device": "cpu", "name": cpu_name(), "isa": torch.backends.cpu.get_cpu_capability(),
            "bf16": cpu_bf16_native(), "fp16": cpu_fp16_native()}


@functools.cache
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def reduced_dtype(device: str):
    """The dtype `auto` picks on this device for a model big enough to gain; None → fp32."""
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_bf16_native() else None


def resolve_precision(choice: str, device: str, *, num_params: int | None = None):
    """The torch dtype to run a model in. `num_params` (when known) lets `auto` keep tiny models in fp32
    on a CPU, where reduced precision saves nothing."""
    import torch

    choice = normalize(choice)
    if choice != "auto":
        return getattr(torch, DTYPE_NAMES[choice])
    dtype = reduced_dtype(device)
    if dtype is None:
        return torch.float32
    if device == "cpu" and num_params is not None and num_params < TINY_MODEL_PARAMS:  # nothing to gain
        return torch.float32
    return dtype


def load_dtype(choice: str, device: str):
    """The dtype to load weights in: the one they will run in, or None where `auto` on a CPU depends
    on the model's size — then load fp32, count, and call `resolve_precision(…, num_params=…)`."""
    if normalize(choice) == "auto" and device == "cpu":
        return None
    return resolve_precision(choice, device)


def count_params(*modules) -> int:
    """Weights in these torch modules, together."""
    return sum(p.numel() for m in modules if m is not None for p in m.parameters())


def dtype_name(dtype) -> str:
    """'float32' for torch.float32 (and for 'fp32', 'float32' …)."""
    if isinstance(dtype, str):
        return DTYPE_NAMES.get(normalize(dtype), dtype)
    return str(dtype).removeprefix("torch.")


# -- the CPU fast path -----------------------------------------------------------------------------
class _PackedLinear:
    """Replaces one linear layer's `forward`: y = x Wᵀ + b with W prepacked for oneDNN (bf16)."""

    def __init__(self, weight_nk, bias, out_features: int):
        import torch

        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight_nk.detach().contiguous(), 1)
        self.bias = bias
        self.out_features = out_features
        self.nbytes = weight_nk.numel() * weight_nk.element_size()

    def __call__(self, x):
        import torch

        shape = x.shape[:-1] + (self.out_features,)
        y = torch.ops.mkldnn._linear_pointwise(  # (N, out)
            x.reshape(-1, x.shape[-1]).contiguous(), self.packed, self.bias, "none", [], ""
        )
        return y.view(shape)


@functools.cache
def cpu_packing_works() -> bool:
    """Whether oneDNN's packed bf16 linear is present and right on this build (checked once)."""
    try:
        import torch

        if not (cpu_bf16_native() and torch.backends.mkldnn.is_available()):
            return False
        g = torch.Generator().manual_seed(0)
        w = torch.randn(24, 16, generator=g).bfloat16()
        x = torch.randn(3, 16, generator=g).bfloat16()
        b = torch.randn(24, generator=g).bfloat16()
        got = _PackedLinear(w, b, 24)(x).float()
        want = torch.nn.functional.linear(x.float(), w.float(), b.float())
        return bool(torch.allclose(got, want, atol=0.1, rtol=0.02))
    except Exception:  # an op missing or renamed in this torch build: the plain path it is
        return False


def pack_linear_layers(model) -> int:
    """Prepack every linear layer (nn.Linear, GPT-2's Conv1D) of a bf16 model on the CPU; returns how
    many. The layers keep their weights and type, so PEFT adapters still attach to them (the adapter's
    own small layers run the plain way). A no-op where packing is unavailable or the model isn't bf16."""
    import torch

    if not cpu_packing_works():
        return 0
    count = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dtype != torch.bfloat16 or weight.device.type != "cpu":
            continue
        if isinstance(getattr(module, "forward", None), _PackedLinear):
            continue
        bias = getattr(module, "bias", None)
        if type(module) is torch.nn.Linear:
            module.forward = _PackedLinear(weight, bias, weight.shape[0])
        elif type(module).__name__ == "Conv1D" and weight.dim() == 2:  # transformers' GPT-2 layer: W is (in, out)
            module.forward = _PackedLinear(weight.t(), bias, weight.shape[1])
        else:
            continue
        count += 1
    return count


def packed_bytes(model) -> int:
    """Bytes held by prepacked weights (on top of the model's parameters)."""
    return sum(m.forward.nbytes for m in model.modules() if isinstance(getattr(m, "forward", None), _PackedLinear))


# -- threads -----------------------------------------------------------------------------------------
class cpu_threads:
    """`with cpu_threads(1):` runs the block with that many intra-op threads and restores the count.
    For tiny models on a CPU, where waking a second thread costs more than the matmul it splits."""

    def __init__(self, n: int | None):
        self.n = n
        self.before: int | None = None

    def __enter__(self):
        import torch

        if self.n is not None and self.n != torch.get_num_threads():
            self.before = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc) -> bool:
        import torch

        if self.before is not None:
            torch.set_num_threads(self.before)
        return False
