"""Where models run, and how much memory they may take there."""

from __future__ import annotations

import os


def resolve_device(choice: str = "auto") -> str:
    """`auto` → cuda if present, else mps, else cpu. An explicit choice that is absent fails clearly."""
    import torch

    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is visible. Use --device auto or cpu.")
    if choice == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps was asked for, but Metal is not available. Use --device auto or cpu.")
    if choice not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unknown device '{choice}': use auto, cpu, cuda or mps.")
    return choice


def total_memory_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 1024**3


def default_budget_bytes(device: str) -> int:
    """Most of a GPU; half of the machine's RAM on CPU (the rest is for the OS, the UI and datasets)."""
    share = 0.85 if device == "cuda" else 0.5
    return int(total_memory_bytes(device) * share)


def idle_cpu_threads() -> int:
    """Intra-op threads for CPU training: the cores not busy when the run starts (at least 1).

    On a shared machine, more threads than idle cores make every step wait for the descheduled
    ones (measured: 2 threads on 2 busy cores ran 5–10× slower than 1). OMP_NUM_THREADS overrides.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(cores, cores - int(busy + 0.5)))
