"""`export` end to end over HTTP: a trained starter compressed (int8 + 30 % magnitude pruning) in a real
child process, its metrics beside the original's, the folder loaded and generating in a fresh process;
and the inputs the job cannot honour refused with a 422 and the reason, before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from engines.starter import STARTER_TEXT
from studio.app import build_app
from studio.config import StudioConfig
from studio.store import utcnow
from tests.api.test_text_lora_job import start_job, wait_job
from tests.conftest import REPO
from tests.engines.test_text_train import pattern_lines


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = StudioConfig(data_dir=tmp_path_factory.mktemp("export-api") / "data", offline=True, device="cpu",
                          job_grace_s=10)  # fmt: skip
    with TestClient(build_app(config, ui=False)) as c:
        c.studio = c.app.state.studio
        yield c


@pytest.fixture(scope="module")
def dataset_id(client) -> str:
    body = "".join(json.dumps({"text": line}) + "\n" for line in pattern_lines(300))
    r = client.post("/api/v1/datasets", files=[("file", ("foxes.jsonl", body.encode()))],
                    data={"kind": "text", "name": "foxes"})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def trained(client, dataset_id) -> str:
    job = wait_job(client, start_job(client, dataset_id, max_steps=60, block_size=64, save_every=60)["id"])
    assert job["status"] == "completed", job["error"]
    return job["artifact"]["id"]


def export(client, **body) -> dict:
    r = client.post("/api/v1/jobs", json={"kind": "export", **body})
    assert r.status_code == 201, r.text
    job = wait_job(client, r.json()["id"], timeout=240)
    assert job["status"] == "completed", (job["error"], client.get(f"/api/v1/jobs/{job['id']}/log").text)
    return job


def test_int8_with_30pct_pruning_reports_size_speed_and_perplexity_beside_the_original(client, trained, dataset_id):
    job = export(client, base_model=trained, dataset_id=dataset_id,
                 params={"quantization": "int8", "sparsity": 0.3, "speed_tokens": 8, "speed_reps": 2})
    m = job["metrics"]
    assert m["size_mb"] < 0.75 * m["size_mb_original"]  # int8 linear weights (the starter is mostly embeddings)
    assert 0.25 <= m["sparsity"] <= 0.35
    assert m["tokens_per_s"] > 0 and m["tokens_per_s_original"] > 0
    assert m["perplexity"] > 0 and m["perplexity_original"] > 0 and m["held_out"] == "dataset"
    assert job["progress"] == 1.0

    # The folder loads and generates in a fresh process: transformers builds the model, the int8 weights go in.
    folder = client.studio.data_dir / m["export_path"]
    assert m["export_path"] == f"models/trained/{job['id']}"
    row = client.studio.exports.table()[0]  # the Models tab's panel
    assert row[1] == "int8, 30% pruned" and f"({m['size_mb_original']:.2f})" in row[2]
    code = ("import sys, torch; from transformers import AutoTokenizer; from engines.quantize import load_int8_export;"
            "f = sys.argv[1]; tok = AutoTokenizer.from_pretrained(f); model = load_int8_export(f);"
            "ids = tok('the red fox', return_tensors='pt').input_ids;"
            "out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,"
            " do_sample=False, pad_token_id=tok.eos_token_id);"
            "print('TEXT:' + tok.decode(out[0, ids.shape[1]:]))")
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("TEXT:")[1].strip()


def test_pruning_only_exports_a_plain_transformers_folder(client, trained):
    job = export(client, base_model=trained, params={"quantization": "none", "sparsity": 0.5, "precision": "bf16",
                                                     "speed_tokens": 4, "speed_reps": 1})
    m = job["metrics"]
    assert m["held_out"] == "built-in lines" and 0.45 <= m["sparsity"] <= 0.55
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(client.studio.data_dir / m["export_path"])
    assert str(model.dtype) == "torch.bfloat16"


@pytest.mark.parametrize("params, reason", [
    ({"sparsity": 0.96}, "sparsity must be between 0 and 0.95"),
    ({"sparsity": -0.1}, "sparsity must be between 0 and 0.95"),
    ({"quantization": "int4"}, "int4 is not supported on this device"),
    ({"quantization": "fp4"}, "quantization must be one of none, int8, int4"),
])
def test_bad_input_is_a_422_with_the_reason(client, params, reason):
    r = client.post("/api/v1/jobs", json={"kind": "export", "base_model": STARTER_TEXT, "params": params})
    assert r.status_code == 422 and reason in r.json()["error"]["message"], r.text


def test_an_adapter_whose_base_is_missing_is_a_422(client):
    store = client.studio.store
    folder = client.studio.data_dir / "models" / "orphan"
    folder.mkdir(parents=True)
    with store.transaction() as c:  # an adapter row whose base model no longer exists
        c.execute("INSERT INTO adapters (id, name, type, base_model, path, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                  ("ad_orphan", "orphan", "text_adapter", "gone/model", "models/orphan", utcnow()))
    r = client.post("/api/v1/jobs", json={"kind": "export", "params": {"adapter": "ad_orphan"}})
    assert r.status_code == 422 and "gone/model" in r.json()["error"]["message"], r.text
