"""Benchmarks: every figure is the studio against the plain library, measured in the same run.

    python -m bench [--quick] [--only NAME …] [--out results.json]     (make bench ARGS="…")

Each group (bench/groups.py) runs in its own process and measures the studio and the plain-library
baseline there, alternating repetitions (A B A B …) after a warm-up and reporting medians, so load
from other work on the machine hits both sides alike. `ratio` is the studio's speed over the plain
library's (> 1: the studio is faster); figures that have no library counterpart (service overhead,
memory, the perplexity change) carry `baseline` and `ratio` null.

Models are built locally (no hub): the starter models, and a GPT-2-small-shaped model (124M weights,
seeded random) with the starter tokenizer, in a work dir that is removed afterwards.
"""
