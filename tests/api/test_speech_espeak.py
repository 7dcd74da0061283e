"""espeak-ng, the classic offline voice: spoken through the normal speech route, its voices listed, and
the offline default when no hub or local speech model is there."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from engines.registry import ModelRegistry
from engines.starter import shipped

ESPEAK = shipped.CLASSIC_SPEECH


def test_espeak_speaks_through_the_speech_route(api_client):
    r = api_client.get("/api/v1/speech/voices", params={"model": ESPEAK})
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["family"] == "espeak-ng" and "not neural" in info["label"]
    assert info["voices"][0] == "en-us" and {"en-gb", "fr-fr", "de"} <= set(info["voices"])
    assert info["controls"] == ["speed", "pitch"] and info["random_weights"] is False

    r = api_client.post("/api/v1/speech/generate", json={"text": "It costs 12 dollars.", "model": ESPEAK,
                                                          "voice": "en-gb", "pitch": 70, "speed": 1.2})
    assert r.status_code == 200, r.text
    value = r.json()
    out = value["outputs"][0]
    assert value["spoken_as"] == "It costs twelve dollars." and value["random_weights"] is False
    assert out["sample_rate"] == 22050
    audio, rate = sf.read(io.BytesIO(api_client.get(out["url"]).content), dtype="float32")
    assert rate == 22050 and 0.5 < len(audio) / rate < 5
    assert float(np.sqrt(np.mean(audio**2))) > 0.02  # speech, not silence
    r = api_client.post("/api/v1/feedback", json={"output_id": out["id"], "rating": "up"})
    assert r.status_code < 300, r.text

    r = api_client.post("/api/v1/speech/generate", json={"text": "Il a 12 ans.", "model": ESPEAK, "voice": "fr-fr"})
    assert r.status_code == 200 and r.json()["spoken_as"] == "Il a 12 ans." and not r.json()["warnings"]

    r = api_client.post("/api/v1/speech/generate", json={"text": "Hi.", "model": ESPEAK, "voice": "klingon"})
    assert r.status_code == 422 and "Unknown voice 'klingon'" in r.text
    r = api_client.post("/api/v1/speech/generate", json={"text": "Hi.", "model": ESPEAK, "pitch": 300})
    assert r.status_code == 422


def test_espeak_is_the_offline_default_and_the_random_vits_stays_listed(tmp_path, monkeypatch):
    monkeypatch.setenv(shipped.TINY_ENV, "0")
    registry = ModelRegistry(tmp_path / "models", offline=True)
    specs = {s.id: s for s in registry.list("speech")}
    assert registry.default_id("speech") == ESPEAK
    assert specs["starter/vits-tiny"].is_random_starter and not specs[ESPEAK].is_random_starter
    assert specs[ESPEAK].meta["card"]["measures"]["closed_set_identified"] >= 5
