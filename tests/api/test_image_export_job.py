"""`image-export` over HTTP: the tiny starter Stable Diffusion written as one fp16 original-layout
checkpoint by a real child process, downloaded, and loaded back offline the way diffusers loads an
AUTOMATIC1111 / ComfyUI file — every weight and a fixed-seed image compared with the original pipeline;
and the inputs the job cannot honour refused with a 422 and the reason, before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors import safe_open

from engines.starter import STARTER_IMAGE, STARTER_TEXT
from studio.app import build_app
from studio.config import StudioConfig
from tests.api.test_text_lora_job import wait_job


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # the child shares two cores with the test process
        config = StudioConfig(data_dir=tmp_path_factory.mktemp("image-export") / "data", offline=True,
                              device="cpu", job_grace_s=10)  # fmt: skip
        with TestClient(build_app(config, ui=False)) as c:
            c.studio = c.app.state.studio
            yield c


def _image(pipe):
    return pipe("a red fox", num_inference_steps=2, height=64, width=64, output_type="np",
                generator=torch.Generator("cpu").manual_seed(0)).images[0]


def test_fp16_export_downloads_and_reloads_with_the_same_weights_and_image(client, tmp_path):
    r = client.post("/api/v1/jobs", json={"kind": "image-export", "base_model": STARTER_IMAGE,
                                          "params": {"precision": "fp16"}})
    assert r.status_code == 201, r.text
    # While the child exports: the original pipeline and its image, from the diffusers folder it reads
    from diffusers import StableDiffusionPipeline

    from engines.image.train_model import load_pipeline

    registry = client.studio.models.registry
    folder = registry.location(registry.resolve(STARTER_IMAGE, "image"))
    original = load_pipeline(str(folder), torch.float32)
    original_image = _image(original)
    job = wait_job(client, r.json()["id"], timeout=120)
    assert job["status"] == "completed", (job["error"], client.get(f"/api/v1/jobs/{job['id']}/log").text)
    m = job["metrics"]
    assert m["precision"] == "fp16" and m["file"] == "sd-tiny-fp16.safetensors"
    assert 0 < m["size_mb"] < m["size_mb_original"]  # half the bytes of the fp32 folder, no tokenizer
    assert m["max_pixel_diff"] < 2.0 and m["max_weight_diff"] < 1e-2

    listed = client.get("/api/v1/image-exports").json()
    assert listed[0]["job_id"] == job["id"] and listed[0]["download"] == f"/api/v1/image-exports/{job['id']}/file"
    assert client.studio.image_exports.table()[0][1] == STARTER_IMAGE  # the Models tab's rows
    got = client.get(listed[0]["download"])
    assert got.status_code == 200 and "sd-tiny-fp16.safetensors" in got.headers["content-disposition"]
    path = tmp_path / "sd-tiny-fp16.safetensors"
    path.write_bytes(got.content)

    with safe_open(str(path), "pt") as f:  # the original layout, every float weight in fp16
        keys = set(f.keys())
        assert {k.split(".")[0] for k in keys} == {"model", "first_stage_model", "cond_stage_model"}
        assert "model.diffusion_model.input_blocks.0.0.weight" in keys
        assert "first_stage_model.decoder.mid.attn_1.q.weight" in keys
        assert "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight" in keys
        assert {f.get_slice(k).get_dtype() for k in keys} == {"F16"}

    # Loaded back offline as diffusers loads an A1111 / ComfyUI file: the folder gives only the configs
    reloaded = StableDiffusionPipeline.from_single_file(str(path), config=str(folder), local_files_only=True,
                                                        torch_dtype=torch.float32, safety_checker=None,
                                                        requires_safety_checker=False)
    for part in ("unet", "vae", "text_encoder"):
        a, b = getattr(original, part).state_dict(), getattr(reloaded, part).state_dict()
        assert set(a) == set(b), part
        for key in a:
            assert torch.allclose(a[key].half().float(), b[key], atol=1e-3, rtol=1e-3), (part, key)
    reloaded.set_progress_bar_config(disable=True)
    assert float(np.abs(original_image - _image(reloaded)).max()) * 255 < 2.0


@pytest.mark.parametrize("body, reason", [
    ({"base_model": STARTER_TEXT}, "Choose one of the image models"),
    ({"params": {"precision": "int3"}}, "precision must be one of fp16, bf16, fp32"),
    ({"params": {"check_size": 65}}, "check_size must be a multiple of 8"),
])
def test_bad_input_is_a_422_with_the_reason(client, body, reason):
    before = len(client.get("/api/v1/jobs").json())
    r = client.post("/api/v1/jobs", json={"kind": "image-export", **body})
    assert r.status_code == 422 and reason in r.json()["error"]["message"], r.text
    assert len(client.get("/api/v1/jobs").json()) == before


def test_a_job_that_is_not_an_image_export_has_no_file(client):
    assert client.get("/api/v1/image-exports/job_nope/file").status_code == 404


def test_a_lora_of_another_model_or_without_files_is_refused(client):
    from studio.store import utcnow

    with client.studio.store.transaction() as c:  # LoRA rows: one of another base model, one whose folder is gone
        for lora_id, base in (("ad_other", "starter/sd-shapes"), ("ad_nofiles", STARTER_IMAGE)):
            c.execute("INSERT INTO adapters (id, name, type, base_model, path, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                      (lora_id, lora_id, "image_lora", base, f"models/loras/{lora_id}", utcnow()))
    before = len(client.get("/api/v1/jobs").json())
    for params, status, reason in (({"lora": "ad_other"}, 422, "sd-shapes"), ({"lora": "ad_nofiles"}, 422, "has no files"),
                                   ({"lora": "ad_none"}, 404, "No image LoRA 'ad_none'"),
                                   ({"lora_scale": 3}, 422, "lora_scale must be between 0 and 2")):
        r = client.post("/api/v1/jobs", json={"kind": "image-export", "base_model": STARTER_IMAGE, "params": params})
        assert r.status_code == status and reason in r.json()["error"]["message"], (params, r.text)
    assert len(client.get("/api/v1/jobs").json()) == before


def test_a_lora_of_the_base_is_copied_into_the_job_and_named_by_id(client, tmp_path):
    from studio.store import utcnow

    folder = client.studio.data_dir / "models" / "adapters" / "ad_good"
    folder.mkdir(parents=True)
    (folder / "pytorch_lora_weights.safetensors").write_bytes(b"x")
    with client.studio.store.transaction() as c:
        c.execute("INSERT INTO adapters (id, name, type, base_model, path, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                  ("ad_good", "foxes", "image_lora", STARTER_IMAGE, "models/adapters/ad_good", utcnow()))
    params = {"lora": "foxes"}  # by name; base_model left out: the LoRA's own
    assert client.studio.image_exports.prepare(None, params, tmp_path) == STARTER_IMAGE
    assert params["lora"] == "ad_good" and (tmp_path / "inputs" / "lora" / "pytorch_lora_weights.safetensors").is_file()
