"""An `image-scratch` job through HTTP: a small Stable Diffusion trained from scratch on the demo
shapes, SIGKILLed after its first checkpoint, resumed, completed, then drawn from in the Image studio;
and the datasets it cannot learn from, refused before any job starts."""

from __future__ import annotations

import io
import json
import os
import signal
import zipfile

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from engines.training import latest_checkpoint
from studio.app import build_app
from studio.config import StudioConfig
from tests.waiting import wait_for

# 32 px and tiny step counts: seconds of training, long enough to be killed after the first checkpoint
PARAMS = {"resolution": 32, "vae_steps": 4, "unet_steps": 6, "batch_size": 4, "vae_batch_size": 4,
          "save_every": 2, "sample_seeds": 1, "sample_steps": 2}  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # the trainer shares two cores with the test process
        config = StudioConfig(
            data_dir=tmp_path_factory.mktemp("scratch") / "data", offline=True, device="cpu", job_grace_s=5
        )
        app = build_app(config, ui=False)
        with TestClient(app) as c:
            c.studio = app.state.studio
            yield c


@pytest.fixture(scope="module")
def shapes(client) -> str:
    r = client.post("/api/v1/datasets/demo", json={"n": 16, "seed": 0})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def finished(client, job_id: str):
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    return job["status"] not in ("queued", "running") and job


@pytest.fixture(scope="module")
def trained(client, shapes):
    """Start, kill the process group after the first checkpoint, resume, finish."""
    r = client.post("/api/v1/jobs", json={"kind": "image-scratch", "dataset_id": shapes, "params": PARAMS})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    run_dir = client.studio.jobs.run_dir(job_id)
    wait_for(lambda: latest_checkpoint(run_dir), what="a first checkpoint")
    pid = client.studio.store.query_one("SELECT pid FROM jobs WHERE id = ?", (job_id,))["pid"]
    os.killpg(pid, signal.SIGKILL)
    interrupted = wait_for(lambda: finished(client, job_id), 30, "the job to stop")
    checkpoint_step, _ = latest_checkpoint(run_dir)
    r = client.post(f"/api/v1/jobs/{job_id}/resume")
    assert r.status_code == 200, r.text
    done = wait_for(lambda: finished(client, job_id), 180, "the resumed job to finish")
    events = [json.loads(line) for line in client.get(f"/api/v1/jobs/{job_id}/events").text.splitlines()]
    return {"job": done, "interrupted": interrupted, "checkpoint_step": checkpoint_step, "events": events}


def test_a_killed_job_resumes_and_its_model_draws_in_the_image_studio(client, trained):
    assert trained["interrupted"]["status"] == "interrupted", trained["interrupted"]
    job = trained["job"]
    assert job["status"] == "completed", job["error"]
    assert job["step"] == 10 and job["progress"] == 1.0
    assert 0 < trained["checkpoint_step"] < 10
    steps = [e["step"] for e in trained["events"]]
    assert steps == list(range(1, 11))  # no step twice, none missing
    assert {e["phase"] for e in trained["events"]} == {"vae", "unet"}
    assert trained["events"][-1]["samples"] == ["samples/step-10.png"]

    model = job["artifact"]["id"]
    listed = {m["id"]: m for m in client.get("/api/v1/models").json()["image"]}
    assert listed[model]["source"] == "trained"
    r = client.post("/api/v1/image/generate", json={"prompt": "a red circle", "model": model, "steps": 2})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == model
    image = Image.open(io.BytesIO(client.get(out["outputs"][0]["url"]).content))
    assert image.size == (32, 32)  # the size it was trained at


def zip_upload(client, kind: str, name: str, files: dict[str, bytes]) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
    r = client.post("/api/v1/datasets", files=[("file", (f"{name}.zip", buf.getvalue()))],
                    data={"kind": kind, "name": name})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["id"]


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(out, format="PNG")
    return out.getvalue()


def test_datasets_it_cannot_learn_from_are_422_before_any_job(client, shapes):
    before = client.get("/api/v1/jobs").json()
    uncaptioned = zip_upload(client, "image", "plain", {"a.png": png_bytes(), "b.png": png_bytes()})
    text = zip_upload(client, "text", "poems", {"poems.txt": b"roses are red\n\nviolets are blue\n"})
    cases = [
        ({}, "needs a captioned image dataset"),
        ({"dataset_id": text}, "'poems' is a text dataset"),
        ({"dataset_id": uncaptioned}, "2 of 2 images in 'plain' have no caption"),
        ({"dataset_id": shapes, "base_model": "starter/gpt2-tiny"}, "Choose one of the image models"),
    ]
    for body, needle in cases:
        r = client.post("/api/v1/jobs", json={"kind": "image-scratch", "params": PARAMS, **body})
        assert r.status_code == 422, r.text
        assert needle in r.json()["error"]["message"]
    assert client.get("/api/v1/jobs").json() == before  # nothing was started


def test_the_training_form_offers_the_kind_with_documented_params(client):
    kinds = {k["kind"]: k for k in client.get("/api/v1/jobs/kinds").json()}
    kind = kinds["image-scratch"]
    assert "from scratch" in kind["doc"] and kind["defaults"]["resolution"] == 64
    assert all(p["doc"] for p in kind["params"]), [p["name"] for p in kind["params"] if not p["doc"]]
