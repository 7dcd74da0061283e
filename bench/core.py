"""What every benchmark shares: the figure record, the run settings, interleaved timing, the device.

A benchmark *group* is a function `run(ctx, names) -> list[Figure]` that measures the studio and the
plain-library baseline in the same process, interleaved (A B A B …) after warm-up, and reports the
medians; a figure's ratio is the median of the ratios of neighbouring runs (`paired_ratio`). `names`
are the figure names wanted from that group (it may skip the others).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    name: str
    value: float | None  # the studio's number (None: could not be measured, see note)
    unit: str
    baseline: float | None = None  # the plain library's number, same unit (None: a plain value)
    ratio: float | None = None  # speed of studio ÷ speed of plain library: > 1 means the studio is faster
    note: str = ""  # what was compared, or why there is no number
    detail: dict[str, Any] = field(default_factory=dict)  # raw medians, settings, checks

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def speed_ratio(studio: float | None, plain: float | None, *, higher_is_better: bool) -> float | None:
    """studio ÷ plain for speeds (tokens/s); plain ÷ studio for times (s/image), so > 1 = studio faster."""
    if not studio or not plain:
        return None
    return studio / plain if higher_is_better else plain / studio


@dataclass
class Context:
    """Settings of one benchmark run, shared by every group (the child processes get them as JSON)."""

    quick: bool = False
    device: str = "cpu"  # cpu | cuda
    threads: int = 1  # intra-op CPU threads for studio and baseline alike
    work_dir: Path = Path("bench-work")  # models, datasets and data dirs built for the run
    reps: int = 5  # timed repetitions per side (after warm-up)
    warmup: int = 1

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir)

    @property
    def data_dir(self) -> Path:
        """A studio data dir whose models/ holds the starter models (built once per run)."""
        return self.work_dir / "data"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["work_dir"] = str(self.work_dir)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Context:
        return cls(**data)


def interleaved(variants: dict[str, Callable[[], float]], reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Call each variant `warmup` times, then `reps` times in turn (A B A B …): load on a shared machine
    hits every side alike. Each call returns its own measurement (seconds, tokens/s …)."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    out: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(reps):
        for name, fn in variants.items():
            out[name].append(float(fn()))
    return out


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def paired_ratio(studio: list[float], plain: list[float], *, higher_is_better: bool) -> float | None:
    """The median of the ratios of neighbouring runs (studio run i against plain run i, measured one
    after the other): load that comes and goes on a shared machine hits both runs of a pair alike,
    so it cancels out, where a ratio of the two medians can pair a slow minute with a quick one."""
    ratios = [speed_ratio(s, p, higher_is_better=higher_is_better) for s, p in zip(studio, plain, strict=True)]
    ratios = [r for r in ratios if r is not None]
    return statistics.median(ratios) if ratios else None


def timed(fn: Callable[[], Any], sync: Callable[[], None] | None = None) -> tuple[float, Any]:
    """(seconds, result) of one call; `sync` waits for queued device work before each clock read."""
    if sync is not None:
        sync()
    t0 = time.perf_counter()
    result = fn()
    if sync is not None:
        sync()
    return time.perf_counter() - t0, result


def device_sync(device: str) -> Callable[[], None] | None:
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return None


def describe_device(device: str, threads: int) -> str:
    """e.g. 'cpu: AMD EPYC 9R14 (AVX512, native bf16), 1 of 2 threads' or 'cuda: NVIDIA H200 (bf16)'."""
    import torch

    from engines.precision import capabilities

    caps = capabilities(device)
    if device == "cuda":
        return f"cuda: {caps['name']} ({'bf16' if caps['bf16'] else 'fp16'}), torch {torch.__version__}"
    bf16 = "native bf16" if caps["bf16"] else "no native bf16"
    return (f"cpu: {caps['name']} ({caps['isa']}, {bf16}), {threads} of {os.cpu_count()} threads, "
            f"torch {torch.__version__}")


def default_threads() -> int:
    """Half the cores (at least one): a benchmark on a shared machine should not fight the other half."""
    return max(1, (os.cpu_count() or 2) // 2)


def quiet_libraries() -> None:
    """No progress bars or load reports in the benchmark's output."""
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    warnings.filterwarnings("ignore")
    try:
        from transformers.utils import logging as t_logging

        t_logging.set_verbosity_error()
        t_logging.disable_progress_bar()
        from diffusers.utils import logging as d_logging

        d_logging.set_verbosity_error()
        d_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - a group without these libraries
        pass
