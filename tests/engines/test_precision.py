"""Precision: what `auto` resolves to per device, the CPU bf16 fast path, bf16 generation on the
starter GPT-2, exporting a merged adapter in a chosen precision, and the studio's setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engines import precision
from engines.precision import normalize, resolve_precision
from engines.starter import STARTER_TEXT, ensure_starter
from engines.text import TextEngine, TextGenerationRequest


@pytest.fixture(scope="module")
def starter_text(tmp_path_factory) -> Path:
    return ensure_starter(STARTER_TEXT, tmp_path_factory.mktemp("precision") / "models")


# -- resolution --------------------------------------------------------------------------------------
def test_choices_are_spelled_either_way_and_unknown_ones_are_refused():
    assert [normalize(c) for c in ("auto", "FP32", "float32", "bfloat16", "torch.float16", "half")] == [
        "auto", "fp32", "fp32", "bf16", "fp16", "fp16"]
    with pytest.raises(ValueError, match="auto, fp32, bf16, fp16, int8"):
        normalize("int4")


def test_an_explicit_choice_is_honoured_on_any_device():
    assert resolve_precision("fp32", "cpu") is torch.float32
    assert resolve_precision("bf16", "cpu") is torch.bfloat16
    assert resolve_precision("fp16", "cuda") is torch.float16
    assert resolve_precision("fp32", "cuda", num_params=10**9) is torch.float32


def test_auto_on_a_cpu_is_bf16_only_with_native_bf16_and_a_model_big_enough(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: True)
    assert resolve_precision("auto", "cpu", num_params=124_000_000) is torch.bfloat16
    assert resolve_precision("auto", "cpu") is torch.bfloat16  # size unknown: the device decides
    assert resolve_precision("auto", "cpu", num_params=200_000) is torch.float32  # a starter model gains nothing
    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: False)
    assert resolve_precision("auto", "cpu", num_params=124_000_000) is torch.float32  # emulated bf16 is slower


def test_auto_on_a_gpu_is_bf16_where_supported_else_fp16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda", num_params=1000) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "cuda") is torch.float16
    assert resolve_precision("auto", "mps") is torch.float16


def test_cpu_capabilities_are_reported():
    caps = precision.capabilities("cpu")
    assert caps["device"] == "cpu" and isinstance(caps["bf16"], bool) and caps["isa"]
    flags = precision.cpu_flags()
    assert caps["bf16"] == bool(flags & {"avx512_bf16", "amx_bf16", "bf16"}) or not flags


# -- the CPU fast path -------------------------------------------------------------------------------
@pytest.mark.skipif(not precision.cpu_packing_works(), reason="this CPU/torch build has no packed bf16 linear")
def test_prepacked_layers_compute_what_the_plain_layers_compute():
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 48), Conv1D(40, 48), torch.nn.Linear(40, 8, bias=False))
    model = model.to(torch.bfloat16).eval()
    x = torch.randn(2, 5, 32, dtype=torch.bfloat16)  # (B, T, C)
    with torch.inference_mode():
        want = model(x).float()
        assert precision.pack_linear_layers(model) == 3
        assert precision.pack_linear_layers(model) == 0  # packing twice is a no-op
        got = model(x).float()
    assert got.shape == want.shape == (2, 5, 8)
    assert torch.allclose(got, want, atol=0.05, rtol=0.02)
    assert precision.packed_bytes(model) == 2 * (32 * 48 + 48 * 40 + 40 * 8)


# -- generation on the starter -----------------------------------------------------------------------
def test_bf16_generation_works_on_the_starter_and_is_reproducible(starter_text):
    engine = TextEngine(starter_text, dtype="bf16").load()
    assert engine.dtype == "bfloat16" and next(engine.model.parameters()).dtype is torch.bfloat16
    request = TextGenerationRequest("the fox", max_new_tokens=12, min_new_tokens=12, num_outputs=3, seed=5)
    a, b = engine.generate(request), engine.generate(request)
    assert a.texts == b.texts and a.new_tokens == [12, 12, 12]
    assert engine.size_bytes() >= sum(p.numel() * 2 for p in engine.model.parameters())
    if precision.cpu_packing_works():
        assert engine.packed_layers > 0


def test_auto_keeps_the_tiny_starter_in_fp32_on_a_cpu(starter_text):
    engine = TextEngine(starter_text, dtype="auto").load()
    assert engine.dtype == "float32" and engine.precision == "auto" and engine.packed_layers == 0


def test_variations_share_the_prompt_and_match_one_by_one_greedy_decoding(starter_text):
    engine = TextEngine(starter_text, dtype="fp32").load()
    batched = engine.generate(TextGenerationRequest("the quick brown fox", max_new_tokens=8, num_outputs=3,
                                                    temperature=0))
    single = engine.generate(TextGenerationRequest("the quick brown fox", max_new_tokens=8, temperature=0))
    assert batched.texts == single.texts * 3


def _lora(starter_text: Path, folder: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(starter_text)
    lora = LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True,
                      init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(folder)
    return folder


def test_an_adapter_attaches_to_a_bf16_model(starter_text, tmp_path):
    engine = TextEngine(starter_text, dtype="bf16").load()
    engine.add_adapter("a", _lora(starter_text, tmp_path / "adapter"))
    request = TextGenerationRequest("the fox", max_new_tokens=6, min_new_tokens=6, temperature=0)
    with_adapter = engine.generate(request, adapter="a")
    without = engine.generate(request)
    assert with_adapter.new_tokens == [6] and with_adapter.texts != without.texts
    fp32 = TextEngine(starter_text, dtype="fp32").load()  # fp32: equal texts need equal rounding
    fp32.add_adapter("a", tmp_path / "adapter")
    single = fp32.generate(request, adapter="a").texts
    request.num_outputs = 2  # the shared prompt cache is computed with the adapter on, too
    assert fp32.generate(request, adapter="a").texts == single * 2


def test_a_merged_adapter_is_exported_in_the_chosen_precision(starter_text, tmp_path):
    from safetensors import safe_open

    from engines.text.adapters import merge_adapter

    adapter = _lora(starter_text, tmp_path / "adapter")
    out = merge_adapter(str(starter_text), adapter, tmp_path / "merged-bf16", dtype="bf16")
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    engine = TextEngine(out, dtype="fp32").load()  # the export loads and generates like any model
    assert engine.generate(TextGenerationRequest("the fox", max_new_tokens=4, min_new_tokens=4)).new_tokens == [4]


# -- the studio's setting ----------------------------------------------------------------------------
def test_the_studio_setting_is_in_health_and_switching_loads_the_other_variant(api_client):
    health = api_client.get("/api/v1/health").json()
    assert health["precision"]["text"] == "auto" and "reduced" in health["precision"]
    studio = api_client.studio
    body = {"prompt": "the fox", "max_new_tokens": 4, "seed": 1}
    assert api_client.post("/api/v1/text/generate", json=body).status_code == 200
    assert studio.text.engine(studio.text.resolve(None, None)[0]).dtype == "float32"  # auto: starter stays fp32
    studio.settings.set_precision("text", "bf16")
    r = api_client.post("/api/v1/text/generate", json=body)
    assert r.status_code == 200 and len(r.json()["outputs"]) == 1
    engine = studio.text.engine(studio.text.resolve(None, None)[0])
    assert engine.dtype == "bfloat16" and studio.models.memory.load_counts[f"text:{STARTER_TEXT}"] == 2
    assert api_client.get("/api/v1/health").json()["precision"]["text"] == "bf16"
    with pytest.raises(Exception, match="Unknown precision"):
        studio.settings.set_precision("text", "int4")


def test_each_engine_has_its_own_setting_changed_through_the_api(api_client):
    r = api_client.get("/api/v1/settings/precision")
    assert r.status_code == 200 and {k: r.json()[k] for k in ("text", "image", "speech")} == {
        "text": "auto", "image": "auto", "speech": "fp32"}
    r = api_client.put("/api/v1/settings/precision", json={"image": "bf16", "speech": "bf16"})
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("text", "image", "speech")} == {"text": "auto", "image": "bf16", "speech": "bf16"}
    assert api_client.get("/api/v1/health").json()["precision"]["speech"] == "bf16"
    for bad in ({"image": "int4"}, {"video": "bf16"}, {"text": None, "image": 3}):
        r = api_client.put("/api/v1/settings/precision", json=bad)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_field", r.text
    assert api_client.studio.config.precision == {"text": "auto", "image": "bf16", "speech": "bf16"}  # unchanged
    with pytest.raises(Exception, match="per engine"):
        api_client.studio.settings.set_precision("gan", "bf16")


def test_speech_runs_in_the_chosen_precision_and_reloads_when_it_changes(api_client):
    import io

    import numpy as np
    import soundfile as sf

    studio = api_client.studio
    body = {"text": "Hello there, twelve cats.", "seed": 3}

    def speak() -> tuple[np.ndarray, str]:
        r = api_client.post("/api/v1/speech/generate", json=body)
        assert r.status_code == 200, r.text
        audio, _ = sf.read(io.BytesIO(api_client.get(r.json()["outputs"][0]["url"]).content), dtype="float32")
        return audio, studio.speech.engine(studio.speech.resolve(None)).dtype

    fp32, dtype = speak()
    assert dtype == "float32"
    assert api_client.put("/api/v1/settings/precision", json={"speech": "bf16"}).status_code == 200
    bf16, dtype = speak()
    again, _ = speak()
    assert dtype == "bfloat16" and np.isfinite(bf16).all() and len(bf16) > 0
    assert np.array_equal(bf16, again)  # reproducible in bf16 too
    loads = {k: v for k, v in studio.models.memory.load_counts.items() if k.startswith("speech:")}
    assert list(loads.values()) == [2]  # loaded once per precision, not per request
    listed = api_client.get("/api/v1/models").json()
    assert [(m["loaded"], m["dtype"]) for m in listed["speech"] if m["id"] == "starter/vits-tiny"] == \
        [(True, "bfloat16")]
    assert all(m["dtype"] is None for m in listed["image"])  # not loaded: nothing runs
