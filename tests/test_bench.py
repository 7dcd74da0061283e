"""The benchmark command runs and writes the promised JSON. Speed is measured by the benchmark, never
asserted here."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from tests.conftest import REPO

FIGURES = {
    "text.generate.bs1", "text.generate.bs8", "text.generate.bs1.reduced_precision", "text.generate.bs1.int8",
    "text.int8.perplexity_delta_pct",
    "text.variations.batched_vs_sequential", "text.perplexity.reduced_precision_delta_pct", "image.generate",
    "speech.generate", "train.text_lora", "train.gan", "service.overhead_ms", "service.startup_s",
    "service.first_text_s", "service.first_image_s",
    "memory.idle_rss_mb", "memory.text_rss_mb", "memory.image_rss_mb", "memory.speech_rss_mb", "memory.gan_rss_mb",
}


def test_every_promised_figure_is_known():
    out = subprocess.run([sys.executable, "-m", "bench", "--list"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    assert FIGURES <= set(out)


def test_only_selects_a_figure_by_its_name_or_a_group_by_prefix():
    from bench.groups import select, unknown

    assert select(["text.generate.bs1"]) == {"text": {"text.generate.bs1"}}
    assert select(["memory"])["memory"] == {n for n in FIGURES if n.startswith("memory.")}
    assert unknown(["text.generate.bs1", "nope"]) == ["nope"]


def test_quick_text_benchmark_writes_figures_with_ratios(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "text.generate.bs1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert isinstance(result["device"], str) and result["device"]
    (figure,) = result["figures"]
    assert {"name", "value", "unit", "baseline", "ratio"} <= set(figure)
    assert figure["name"] == "text.generate.bs1" and figure["unit"] == "tok/s"
    assert figure["value"] > 0 and figure["baseline"] > 0
    runs = figure["detail"]["runs"]  # the ratio is the median over neighbouring (studio, plain) runs
    assert len(runs["studio"]) == len(runs["plain"]) >= 3
    pairs = [s / p for s, p in zip(runs["studio"], runs["plain"], strict=True)]
    assert abs(figure["ratio"] - statistics.median(pairs)) < 1e-9
    assert figure["value"] == statistics.median(runs["studio"]) and figure["baseline"] == statistics.median(runs["plain"])
    assert figure["detail"]["same_text_as_plain"] is True  # same model, seed and settings in fp32
    assert "text.generate.bs1" in proc.stdout and "plain" in proc.stdout  # one printed line per figure
