"""POST /jobs resolves `base_model` through the model registry before anything is written."""

from __future__ import annotations

import pytest

from engines.starter import STARTER_IMAGE, STARTER_TEXT
from studio.config import StudioConfig
from studio.store import utcnow


@pytest.fixture
def config(tmp_path):
    # nothing starts: these tests are about what is accepted, not about training
    return StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu", max_concurrent_jobs=0)


def nothing_written(client) -> bool:
    data = client.studio.data_dir
    return (
        client.get("/api/v1/jobs").json() == []
        and list((data / "runs").iterdir()) == []
        and [p for p in (data / "tmp").iterdir() if p.name != "gradio"] == []
    )


@pytest.mark.parametrize(
    "kind, base_model",
    [
        ("text-lora", "../../studio.db"),
        ("text-lora", "starter/gpt2-tiny\x00"),
        ("text-lora", "/etc/passwd"),
        ("text-lora", "no-such/model"),
        ("text-lora", STARTER_IMAGE),  # a real model, of the wrong kind
        ("image-lora", STARTER_TEXT),
        ("image-lora", "models/starter/sd-tiny"),
        ("text-feedback", "runs/../../x"),
    ],
)
def test_unknown_base_model_is_422_listing_the_kinds_choices_and_writes_nothing(api_client, kind, base_model):
    r = api_client.post("/api/v1/jobs", json={"kind": kind, "base_model": base_model, "params": {}})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "unknown_model"
    expected = STARTER_IMAGE if kind == "image-lora" else STARTER_TEXT
    assert expected in err["message"] and kind in err["message"]
    assert "\x00" not in err["message"]
    assert nothing_written(api_client)


@pytest.mark.parametrize("kind", ["gan", "selftest"])
def test_kinds_that_train_from_scratch_refuse_a_base_model(api_client, kind):
    r = api_client.post("/api/v1/jobs", json={"kind": kind, "base_model": "../../studio.db", "params": {}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_field", r.text
    assert "base_model" in r.json()["error"]["message"]
    assert nothing_written(api_client)


def test_known_base_models_are_accepted_trained_ones_included(api_client):
    r = api_client.post("/api/v1/jobs", json={"kind": "text-lora", "base_model": STARTER_TEXT, "params": {}})
    assert r.status_code == 201, r.text
    r = api_client.post("/api/v1/jobs", json={"kind": "image-lora", "base_model": STARTER_IMAGE, "params": {}})
    assert r.status_code == 201, r.text
    r = api_client.post("/api/v1/jobs", json={"kind": "text-lora", "params": {}})  # the default
    assert r.status_code == 201 and r.json()["base_model"] is None

    # a fully fine-tuned text model (a finished job's artifact) is a base model too
    studio = api_client.studio
    folder = studio.data_dir / "models" / "trained" / "job_00000000000000ff"
    folder.mkdir(parents=True)
    with studio.store.transaction() as c:
        c.execute(
            "INSERT INTO adapters (id, name, type, base_model, path, meta, created_at)"
            " VALUES ('ad_00000000000000ff', 'mine', 'text_model', ?, 'models/trained/job_00000000000000ff', '{}', ?)",
            (STARTER_TEXT, utcnow()),
        )
    r = api_client.post("/api/v1/jobs", json={"kind": "text-lora", "base_model": "ad_00000000000000ff", "params": {}})
    assert r.status_code == 201, r.text
    r = api_client.post("/api/v1/jobs", json={"kind": "image-lora", "base_model": "ad_00000000000000ff", "params": {}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_model"
