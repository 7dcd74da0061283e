"""Which figures exist, which group measures them, and running one group in its own process.

Each group runs in a child process (`python -m bench.groups GROUP …`): the studio and its baseline
share that process, while process-wide state (threads, RNG, accelerate's singleton, peak memory) never
leaks from one group into the next.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from pathlib import Path

from bench.core import Context, Figure, quiet_libraries

# group → (module:function, figure names it measures), in the order they run
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "text": ("bench.text:run_gpt2", ("text.generate.bs1", "text.generate.bs8", "text.generate.bs1.reduced_precision",
                                     "text.generate.bs1.int8", "text.variations.batched_vs_sequential")),
    "text-starter": ("bench.text:run_starter", ("text.generate.bs1.starter", "text.generate.bs8.starter")),
    "perplexity": ("bench.text:run_perplexity", ("text.perplexity.reduced_precision_delta_pct",
                                                 "text.int8.perplexity_delta_pct")),
    "image": ("bench.image:run", ("image.generate",)),
    "speech": ("bench.speech:run", ("speech.generate",)),
    "train-text": ("bench.training:run_text_lora", ("train.text_lora",)),
    "train-gan": ("bench.training:run_gan", ("train.gan",)),
    "service": ("bench.service:run", ("service.overhead_ms", "service.startup_s", "service.first_text_s",
                                             "service.first_image_s")),
    "memory": ("bench.memory:run", ("memory.idle_rss_mb", "memory.text_rss_mb", "memory.image_rss_mb",
                                    "memory.speech_rss_mb", "memory.gan_rss_mb")),
}
ALL_FIGURES: tuple[str, ...] = tuple(name for _, names in GROUPS.values() for name in names)
UNITS = {"text": "tok/s", "perplexity": "%", "image": "s/image", "speech": "RTF", "train-text": "tok/s",
         "train-gan": "images/s", "memory": "MB"}


def _matches(name: str, pattern: str) -> bool:
    """A figure's own name selects it alone; anything else is a prefix (`text`, `memory.`, `train`)."""
    if pattern in ALL_FIGURES:
        return name == pattern
    return name.startswith(pattern.rstrip("."))


def select(only: list[str] | None) -> dict[str, set[str]]:
    """group → wanted figure names (all of them when `only` is empty)."""
    wanted: dict[str, set[str]] = {}
    for group, (_, names) in GROUPS.items():
        for name in names:
            if not only or any(_matches(name, o) for o in only):
                wanted.setdefault(group, set()).add(name)
    return wanted


def unknown(only: list[str]) -> list[str]:
    return [o for o in only if not any(_matches(n, o) for n in ALL_FIGURES)]


def failed(names: set[str], group: str, why: str) -> list[Figure]:
    unit = "ms" if group == "service" else UNITS.get(group, "")
    return [Figure(n, None, "s" if n.endswith("_s") else unit, note=why) for n in sorted(names)]


def run_group(group: str, names: set[str], ctx: Context) -> list[Figure]:
    """Run one group here (in this process), turning a missing engine or a crash into null figures."""
    import torch

    quiet_libraries()
    torch.set_num_threads(ctx.threads)
    target, _ = GROUPS[group]
    module_name, fn_name = target.split(":")
    try:
        fn = getattr(importlib.import_module(module_name), fn_name)
        figures = fn(ctx, names)
    except ModuleNotFoundError as exc:
        return failed(names, group, f"not measured: {exc} (engine not importable yet)")
    except Exception as exc:  # a benchmark bug or an engine failure: report it, keep the others
        traceback.print_exc()
        return failed(names, group, f"not measured: {type(exc).__name__}: {exc}")
    by_name = {f.name: f for f in figures}
    missing = names - set(by_name)
    return figures + failed(missing, group, "not measured") if missing else figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark group (used by `python -m bench`).")
    parser.add_argument("group", choices=list(GROUPS))
    parser.add_argument("--names", nargs="+", required=True)
    parser.add_argument("--context", required=True, help="the run's Context as JSON")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    ctx = Context.from_json(json.loads(args.context))
    figures = run_group(args.group, set(args.names), ctx)
    Path(args.out).write_text(json.dumps([f.to_dict() for f in figures]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
