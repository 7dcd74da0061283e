"""GANs through HTTP: the demo dataset, a `gan` job killed and resumed on the jobs platform, then
generation, latent walks, export and ratings with the GAN it made."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import signal
import sys
import time
import zipfile

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from engines.training import latest_checkpoint
from studio.app import build_app
from studio.config import StudioConfig
from tests.waiting import wait_for

# Small enough to finish in seconds on two busy cores, long enough to be killed half-way.
JOB_PARAMS = {
    "resolution": 32,
    "max_steps": 150,
    "batch_size": 16,
    "ngf": 16,
    "ndf": 16,
    "save_every": 25,
    "eval_every": 0,
    "quality_samples": 32,
    "log_every": 5,
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # the trainer shares two cores with the test process
        config = StudioConfig(
            data_dir=tmp_path_factory.mktemp("gan") / "data", offline=True, device="cpu", job_grace_s=5
        )
        app = build_app(config, ui=False)
        with TestClient(app) as c:
            c.studio = app.state.studio
            yield c


@pytest.fixture(scope="module")
def trained(client):
    """A `gan` job on the demo dataset, SIGKILLed after its first checkpoint, resumed, completed."""
    # 1. The demo dataset, registered like an upload
    r = client.post("/api/v1/datasets/demo", json={"n": 320, "seed": 0})  # captions repeat: a conditional GAN
    assert r.status_code == 201, r.text
    dataset = r.json()
    assert dataset["kind"] == "image" and dataset["num_items"] == 320
    assert dataset["id"] in [d["id"] for d in client.get("/api/v1/datasets").json()["datasets"]]

    # 2. Start, wait for a checkpoint, kill the whole process group from outside
    r = client.post("/api/v1/jobs", json={"kind": "gan", "dataset_id": dataset["id"], "params": JOB_PARAMS})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    run_dir = client.studio.jobs.run_dir(job_id)
    wait_for(lambda: latest_checkpoint(run_dir), what="a first checkpoint")
    pid = client.studio.store.query_one("SELECT pid FROM jobs WHERE id = ?", (job_id,))["pid"]
    os.killpg(pid, signal.SIGKILL)
    interrupted = wait_for(
        lambda: (
            (j := client.get(f"/api/v1/jobs/{job_id}").json())["status"] not in ("queued", "running") and j
        ),
        30,
        "the job to stop",
    )
    checkpoint_step, _ = latest_checkpoint(run_dir)

    # 3. Resume and finish
    resumed_at = time.time()
    r = client.post(f"/api/v1/jobs/{job_id}/resume")
    assert r.status_code == 200, r.text
    done = wait_for(
        lambda: (
            (j := client.get(f"/api/v1/jobs/{job_id}").json())["status"] not in ("queued", "running") and j
        ),
        180,
        "the resumed job to finish",
    )
    events = [json.loads(line) for line in client.get(f"/api/v1/jobs/{job_id}/events").text.splitlines()]
    return {
        "job": done,
        "interrupted": interrupted,
        "checkpoint_step": checkpoint_step,
        "resumed_at": resumed_at,
        "events": events,
        "model": (done["artifact"] or {}).get("id"),
    }


def png(client, url: str) -> np.ndarray:
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))


# -- the job ---------------------------------------------------------------------------------------
def test_a_killed_gan_job_resumes_from_its_checkpoint_and_completes(client, trained):
    assert trained["interrupted"]["status"] == "interrupted", trained["interrupted"]
    job = trained["job"]
    assert job["status"] == "completed", job["error"]
    assert job["step"] == 150 and job["progress"] == 1.0
    ckpt = trained["checkpoint_step"]
    assert ckpt % 25 == 0 and 0 < ckpt < 150
    steps = [e["step"] for e in trained["events"]]
    assert steps == sorted(set(steps)) and steps[-1] == 150  # no step twice after the resume
    after = [e["step"] for e in trained["events"] if e["time"] >= trained["resumed_at"]]
    assert after[0] == ckpt + 1  # continued right after the checkpoint
    assert f"resumed from step {ckpt}" in client.get(f"/api/v1/jobs/{job['id']}/log?lines=400").text

    metrics = job["metrics"]
    assert {"loss", "loss_g", "loss_d", "d_x", "d_g_z", "quality", "quality_start", "diversity"} <= set(
        metrics
    )
    assert isinstance(metrics["mode_collapse_warning"], bool)
    assert job["artifact"]["type"] == "gan"
    listed = client.get("/api/v1/models").json()["gan"]
    assert {"id": trained["model"], "source": "trained"}.items() <= next(
        m for m in listed if m["id"] == trained["model"]
    ).items()


# -- generating with the GAN it made ---------------------------------------------------------------
def test_generate_with_a_seed_is_reproducible_image_by_image(client, trained):
    model = trained["model"]
    r = client.post("/api/v1/gan/generate", json={"model": model, "num_outputs": 3, "seed": 40})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == model and isinstance(body["elapsed_s"], float)
    assert [o["seed"] for o in body["outputs"]] == [40, 41, 42]
    first = [png(client, o["url"]) for o in body["outputs"]]
    assert first[0].shape == (32, 32, 3)

    again = client.post("/api/v1/gan/generate", json={"model": model, "num_outputs": 3, "seed": 40}).json()
    assert all(np.array_equal(a, png(client, o["url"])) for a, o in zip(first, again["outputs"], strict=True))
    alone = client.post("/api/v1/gan/generate", json={"model": model, "seed": 41}).json()["outputs"]
    assert len(alone) == 1 and np.array_equal(png(client, alone[0]["url"]), first[1])

    out = client.get(f"/api/v1/outputs/{body['outputs'][0]['id']}").json()
    assert out["kind"] == "gan" and out["model"] == model and out["seed"] == 40


def test_a_latent_walk_ends_on_the_two_seeds_images_and_makes_a_gif(client, trained):
    model = trained["model"]
    r = client.post("/api/v1/gan/walk", json={"model": model, "seed_a": 7, "seed_b": 1234, "frames": 5})
    assert r.status_code == 200, r.text
    walk = r.json()
    assert [f["t"] for f in walk["frames"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    a = client.post("/api/v1/gan/generate", json={"model": model, "seed": 7}).json()["outputs"][0]
    b = client.post("/api/v1/gan/generate", json={"model": model, "seed": 1234}).json()["outputs"][0]
    frames = [png(client, f["url"]) for f in walk["frames"]]
    assert np.array_equal(frames[0], png(client, a["url"]))
    assert np.array_equal(frames[-1], png(client, b["url"]))
    assert not np.array_equal(frames[2], frames[0])

    gif = client.get(walk["gif"]["url"])
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    with Image.open(io.BytesIO(gif.content)) as im:
        assert im.n_frames == 8  # there and back: 5 + 3
    assert client.get(f"/api/v1/outputs/{walk['gif']['id']}").json()["kind"] == "gan"


def test_rating_a_gan_output_works_like_any_other(client, trained):
    out = client.post("/api/v1/gan/generate", json={"model": trained["model"], "seed": 3}).json()["outputs"][
        0
    ]
    r = client.post("/api/v1/feedback", json={"output_id": out["id"], "rating": "up"})
    assert r.status_code == 200, r.text
    assert r.json()["rating"] == "up"
    assert client.get(f"/api/v1/outputs/{out['id']}").json()["rating"] == "up"
    stats = client.get("/api/v1/feedback/stats").json()
    assert any(
        row["kind"] == "gan" and row["model"] == trained["model"] and row["up"] >= 1
        for row in stats["by_model"]
    )


def test_an_exported_gan_rebuilds_the_same_images_outside_the_studio(client, trained, tmp_path):
    model = trained["model"]
    r = client.get(f"/api/v1/gan/{model}/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert set(zf.namelist()) == {"generator.safetensors", "config.json", "dcgan.py", "README.md"}
        zf.extractall(tmp_path)
    spec = importlib.util.spec_from_file_location("exported_dcgan", tmp_path / "dcgan.py")
    dcgan = importlib.util.module_from_spec(spec)
    sys.modules["exported_dcgan"] = dcgan  # what `from dcgan import …` does (dataclasses need it)
    try:
        spec.loader.exec_module(dcgan)
    finally:
        del sys.modules["exported_dcgan"]
    generator = dcgan.load_generator(tmp_path)
    g = torch.Generator().manual_seed(42)  # as the README says
    z = torch.randn(1, generator.config.nz, generator=g)
    label = torch.randint(len(generator.config.classes), (1,), generator=g) if generator.config.classes else None
    assert label is not None  # the demo GAN is conditional
    with torch.no_grad():
        image = ((generator(z, label)[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    studio_image = client.post("/api/v1/gan/generate", json={"model": model, "seed": 42}).json()["outputs"][0]
    assert np.array_equal(image, png(client, studio_image["url"]))


def test_a_conditional_gan_lists_its_classes_and_draws_the_one_asked_for(client, trained):
    model = trained["model"]
    info = client.get(f"/api/v1/gan/{model}").json()
    assert info["id"] == model and info["resolution"] == 32 and info["truncation"] == 0.3
    assert len(info["classes"]) > 100 and "a red circle on a blue background" in info["classes"]
    drawn = client.post("/api/v1/gan/generate", json={"model": model, "num_outputs": 4, "seed": 3}).json()
    assert all(o["label"] in info["classes"] for o in drawn["outputs"]) and drawn["truncation"] == 0.3
    label = info["classes"][5]
    asked = client.post("/api/v1/gan/generate", json={"model": model, "num_outputs": 2, "seed": 3, "label": label,
                                                      "truncation": 0.0}).json()  # fmt: skip
    assert [o["label"] for o in asked["outputs"]] == [label, label] and asked["truncation"] == 0.0
    a, b = (png(client, o["url"]) for o in asked["outputs"])
    assert np.array_equal(a, b)  # ψ = 0: the class's mean image, whatever the seed
    out = client.get(f"/api/v1/outputs/{asked['outputs'][0]['id']}").json()
    assert out["prompt"] == label and out["params"]["label"] == label and out["params"]["truncation"] == 0.0

    r = client.post("/api/v1/gan/generate", json={"model": model, "label": "a purple star on a green background"})
    assert r.status_code == 422 and "Unknown class 'a purple star on a green background'" in r.json()["error"]["message"]
    r = client.post("/api/v1/gan/walk", json={"model": model, "seed_a": 1, "seed_b": 2, "label": "nope"})
    assert r.status_code == 422
    r = client.post("/api/v1/gan/generate", json={"model": model, "truncation": 1.5})
    assert r.status_code == 422
    assert client.get("/api/v1/gan/nope").status_code == 404


# -- errors ----------------------------------------------------------------------------------------
def test_an_unknown_gan_is_a_404_that_lists_the_trained_ones(client, trained):
    for method, url, body in [
        ("post", "/api/v1/gan/generate", {"model": "nope"}),
        ("post", "/api/v1/gan/walk", {"model": "nope", "seed_a": 1, "seed_b": 2}),
        ("get", "/api/v1/gan/nope/export", None),
    ]:
        r = client.request(method.upper(), url, json=body)
        assert r.status_code == 404, r.text
        error = r.json()["error"]
        assert error["code"] == "unknown_model" and "nope" in error["message"]
        assert trained["model"] in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "x", "num_outputs": 17},
        {"model": "x", "num_outputs": 0},
        {"model": "x", "seed": -1},
        {"model": "x", "prompt": "a cat"},  # extra fields are refused
        {"num_outputs": 1},
    ],
)
def test_a_bad_generate_form_is_a_422(client, body):
    r = client.post("/api/v1/gan/generate", json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_field"


def test_a_bad_walk_or_demo_form_is_a_422(client):
    r = client.post("/api/v1/gan/walk", json={"model": "x", "seed_a": 1, "seed_b": 2, "frames": 1})
    assert r.status_code == 422
    r = client.post("/api/v1/datasets/demo", json={"n": 5})
    assert r.status_code == 422


def test_only_admins_create_the_demo_dataset(tmp_path):
    config = StudioConfig(
        data_dir=tmp_path / "data",
        offline=True,
        device="cpu",
        accounts=[("admin", "admin-pass"), ("bob", "bob-pass")],
    )
    with TestClient(build_app(config, ui=False)) as c:
        bob = {"Authorization": "Basic " + base64.b64encode(b"bob:bob-pass").decode()}
        r = c.post("/api/v1/datasets/demo", json={"n": 16}, headers=bob)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert c.get("/api/v1/datasets", headers=bob).json()["datasets"] == []
        admin = {"Authorization": "Basic " + base64.b64encode(b"admin:admin-pass").decode()}
        r = c.post("/api/v1/datasets/demo", json={"n": 16, "name": "Shapes"}, headers=admin)
        assert r.status_code == 201 and r.json()["name"] == "Shapes" and r.json()["num_items"] == 16
