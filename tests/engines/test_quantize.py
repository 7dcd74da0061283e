"""int8 text serving: the int8 layers compute what the float ones do, the starter GPT-2 loads and
generates in int8 behind the perplexity guard, and the guard refuses with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engines import quantize
from engines.quantize import Int8Refused, int8_kernel, quantize_linear_layers_int8
from engines.starter import STARTER_TEXT, ensure_starter
from engines.text import TextEngine, TextGenerationRequest


@pytest.fixture(scope="module")
def starter_text(tmp_path_factory) -> Path:
    return ensure_starter(STARTER_TEXT, tmp_path_factory.mktemp("quantize") / "models")


@pytest.mark.parametrize("kernel", ["fbgemm", "int8pack"])
def test_each_int8_kernel_computes_what_a_float_linear_computes(kernel):
    torch.manual_seed(0)
    w, b, x = torch.randn(40, 64), torch.randn(40), torch.randn(3, 64)
    try:
        got = quantize._Int8Linear(w, b, kernel)(x)
    except (RuntimeError, AttributeError, NotImplementedError):
        pytest.skip(f"{kernel} is not in this torch build")
    want = torch.nn.functional.linear(x, w, b)
    assert (got - want).abs().max() < 0.05 * want.abs().max()


def test_int8_layers_compute_what_the_float_layers_compute():
    from transformers.pytorch_utils import Conv1D

    assert int8_kernel() in ("fbgemm", "int8pack")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 48), Conv1D(32, 48))  # Conv1D(nf=out, nx=in)
    x = torch.randn(2, 5, 64)  # (B, T, C)
    want = model(x)
    assert quantize_linear_layers_int8(model) == 2
    got = model(x)
    assert got.shape == want.shape == (2, 5, 32)
    assert (got - want).abs().max() < 0.05 * want.abs().max()


def test_the_starter_generates_in_int8_within_the_perplexity_bound(starter_text):
    engine = TextEngine(starter_text, dtype="int8").load()
    assert engine.dtype == "float32" and engine.quality.passed
    assert abs(engine.quality.delta_pct) <= quantize.MAX_PERPLEXITY_INCREASE_PCT
    request = TextGenerationRequest(prompt="The fox", max_new_tokens=6, seed=3)
    first, second = engine.generate(request).texts, engine.generate(request).texts
    assert first == second and first[0]
    assert engine.size_bytes() > TextEngine(starter_text, dtype="fp32").load().size_bytes()  # int8 copy held beside


def test_the_guard_refuses_int8_with_the_measured_reason(starter_text, monkeypatch):
    monkeypatch.setattr(quantize, "MAX_PERPLEXITY_INCREASE_PCT", -100.0)  # nothing can pass
    with pytest.raises(Int8Refused, match=r"raises held-out perplexity by .*% \(.* → .*\), over the -100% bound"):
        TextEngine(starter_text, dtype="int8").load()


def test_int8_is_a_text_setting_only(api_client):
    r = api_client.put("/api/v1/settings/precision", json={"image": "int8"})
    assert r.status_code == 422 and "int8" not in r.json()["error"]["message"].split("should be")[0]
    r = api_client.put("/api/v1/settings/precision", json={"text": "int8"})
    assert r.status_code == 200 and r.json()["text"] == "int8"
    r = api_client.post("/api/v1/text/generate", json={"prompt": "the fox", "max_new_tokens": 4, "seed": 1})
    assert r.status_code == 200, r.text


def test_a_refused_int8_load_is_a_422_with_the_reason(api_client, monkeypatch):
    monkeypatch.setattr(quantize, "MAX_PERPLEXITY_INCREASE_PCT", -100.0)
    api_client.put("/api/v1/settings/precision", json={"text": "int8"})
    r = api_client.post("/api/v1/text/generate", json={"prompt": "the fox", "max_new_tokens": 4, "seed": 1})
    assert r.status_code == 422 and "int8 refused" in r.text and "perplexity" in r.text
