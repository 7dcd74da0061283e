"""An `image-lora` job through HTTP on the real app: upload pictures, train (a real child process),
watch the samples, then generate with the LoRA in the Image studio."""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from engines.starter import STARTER_IMAGE, ensure_starter, starter_path
from studio.config import StudioConfig

# Small and fast on the starter (random weights): a high learning rate shows a falling loss in few steps.
PARAMS = {"max_steps": 16, "save_every": 8, "batch_size": 4, "learning_rate": 1e-2, "sample_steps": 2}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The image engine runs in this process: one thread is faster for the tiny model on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sd_tiny(tmp_path_factory):
    return ensure_starter(STARTER_IMAGE, tmp_path_factory.mktemp("models"))


@pytest.fixture
def config(tmp_path):
    return StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu", job_grace_s=10)


@pytest.fixture
def api(config, sd_tiny, request):
    shutil.copytree(sd_tiny, starter_path(STARTER_IMAGE, config.data_dir / "models"))
    return request.getfixturevalue("api_client")


def shapes_zip(n: int = 12) -> bytes:
    """Red squares and blue circles (64×64 PNGs, a little shifted each time) + metadata.jsonl captions."""
    buf = io.BytesIO()
    rows = []
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            img = Image.new("RGB", (64, 64), "white")
            draw = ImageDraw.Draw(img)
            dx = (i // 2 % 3) * 4
            if i % 2 == 0:
                draw.rectangle([12 + dx, 12, 48 + dx, 48], fill=(220, 30, 30))
                caption = "a red square"
            else:
                draw.ellipse([12 + dx, 12, 48 + dx, 48], fill=(30, 60, 220))
                caption = "a blue circle"
            png = io.BytesIO()
            img.save(png, format="PNG")
            zf.writestr(f"shape{i:02d}.png", png.getvalue())
            rows.append({"file_name": f"shape{i:02d}.png", "text": caption})
        zf.writestr("metadata.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return buf.getvalue()


def upload_shapes(api) -> str:
    r = api.post("/api/v1/datasets", files=[("file", ("shapes.zip", shapes_zip()))],
                 data={"kind": "image", "name": "shapes"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["num_items"] == 12 and r.json()["stats"]["captioned"] == 12
    return r.json()["id"]


def start_job(api, dataset_id: str, **params) -> dict:
    body = {"kind": "image-lora", "dataset_id": dataset_id, "base_model": STARTER_IMAGE,
            "params": {**PARAMS, **params}}  # fmt: skip
    r = api.post("/api/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def wait_job(api, job_id: str, until, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/api/v1/jobs/{job_id}").json()
        if until(job):
            return job
        assert job["status"] in ("queued", "running"), (job, api.get(f"/api/v1/jobs/{job_id}/log").text)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never got there: {job}\n{api.get(f'/api/v1/jobs/{job_id}/log').text}")


def finished(job: dict) -> bool:
    return job["status"] not in ("queued", "running")


def events(api, job_id: str) -> list[dict]:
    r = api.get(f"/api/v1/jobs/{job_id}/events")
    assert r.status_code == 200
    return [json.loads(line) for line in r.text.splitlines()]


def image(api, seed: int, **body) -> np.ndarray:
    r = api.post("/api/v1/image/generate", json={"prompt": "a red square", "seed": seed, **body})
    assert r.status_code == 200, r.text
    png = api.get(r.json()["outputs"][0]["url"])
    return np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB"))


def test_an_image_lora_job_trains_shows_samples_and_its_lora_changes_generation(api):
    from studio.ui.train_samples import sample_paths

    kinds = {k["kind"]: k for k in api.get("/api/v1/jobs/kinds").json()}
    assert {"resolution", "augment", "lora_rank", "instance_prompt"} <= set(kinds["image-lora"]["defaults"])

    # 1. Train on an uploaded set of captioned pictures.
    job = start_job(api, upload_shapes(api), augment=["flip"])
    t0 = time.monotonic()
    done = wait_job(api, job["id"], finished)
    assert done["status"] == "completed", done["error"]
    took = time.monotonic() - t0
    assert took < 90 and done["step"] == 16 and done["progress"] == 1.0, took

    # 2. The loss fell: on fixed noise and timesteps, and in the mean of the first vs last steps.
    metrics = done["metrics"]
    assert metrics["eval_loss"] < metrics["eval_loss_before"] - 0.01
    assert metrics["loss"] < metrics["loss_start"] and metrics["steps"] == 16

    # 3. Samples are in the events, and the Training tab finds them.
    logged = events(api, job["id"])
    assert [e["step"] for e in logged] == list(range(1, 17))
    run_dir = api.studio.jobs.run_dir(job["id"]).path
    named = [rel for e in logged for rel in e.get("samples", [])]
    assert len(named) == 4 and all((run_dir / rel).is_file() for rel in named)  # 2 prompts at steps 8, 16
    shown = sample_paths(run_dir, logged)
    assert len(shown) == 4 and str((run_dir / named[-1]).resolve()) in shown

    # 4. The LoRA is registered for its base model and changes generation by its scale.
    lora = done["artifact"]["id"]
    assert done["artifact"]["type"] == "image_lora"
    listed = {a["id"]: a for a in api.get("/api/v1/models").json()["image_loras"]}
    assert listed[lora]["base_model"] == STARTER_IMAGE and listed[lora]["job_id"] == job["id"]
    base = image(api, 11)
    zero = image(api, 11, lora=lora, lora_scale=0.0)
    full = image(api, 11, lora=lora, lora_scale=1.0)
    assert np.array_equal(zero, base)
    assert not np.array_equal(full, base)


def test_a_cancelled_image_lora_job_resumes_from_its_checkpoint_without_repeating_steps(api):
    job = start_job(api, upload_shapes(api), save_every=4, sample_steps=1)
    wait_job(api, job["id"], lambda j: j["step"] >= 4 or finished(j))
    r = api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    stopped_at = r.json()["step"]
    assert 4 <= stopped_at < 16

    assert api.post(f"/api/v1/jobs/{job['id']}/resume").json()["status"] == "queued"
    done = wait_job(api, job["id"], finished)
    assert done["status"] == "completed", done["error"]
    assert [e["step"] for e in events(api, job["id"])] == list(range(1, 17))  # none twice, none missing
    log = api.get(f"/api/v1/jobs/{job['id']}/log?lines=200").text
    assert f"resumed from step {stopped_at}" in log and f"steps {stopped_at + 1}..16" in log
    assert done["artifact"]["type"] == "image_lora"
