"""`text-lora` end to end over HTTP: upload a patterned corpus, train (full and LoRA) in real child
processes, generate with the results, and manage the adapters (export, import, mix, delete)."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from engines.starter import STARTER_TEXT
from studio.app import build_app
from studio.config import StudioConfig
from tests.engines.test_text_train import pattern_lines

PROMPT = "the red fox jumps over"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = StudioConfig(data_dir=tmp_path_factory.mktemp("lora-api") / "data", offline=True, device="cpu",
                          job_grace_s=10)  # fmt: skip
    with TestClient(build_app(config, ui=False)) as c:
        c.studio = c.app.state.studio
        yield c


def wait_job(client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.3)
    raise AssertionError(
        f"job {job_id} did not finish: {job}\n{client.get(f'/api/v1/jobs/{job_id}/log').text}"
    )


def start_job(client, dataset_id: str, **params) -> dict:
    r = client.post("/api/v1/jobs", json={"kind": "text-lora", "dataset_id": dataset_id,
                                          "base_model": STARTER_TEXT, "params": params})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def dataset_id(client) -> str:
    body = "".join(json.dumps({"text": line}) + "\n" for line in pattern_lines(300))
    r = client.post("/api/v1/datasets", files=[("file", ("foxes.jsonl", body.encode()))],
                    data={"kind": "text", "name": "foxes"})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def jobs(client, dataset_id) -> dict[str, dict]:
    """One full fine-tune (the starter's default method) and one LoRA job, queued together."""
    full = start_job(client, dataset_id, max_steps=150, block_size=64, save_every=50)
    lora = start_job(client, dataset_id, method="lora", max_steps=8, save_every=4, block_size=64,
                     learning_rate=5e-3)  # fmt: skip
    done = {"full": wait_job(client, full["id"]), "lora": wait_job(client, lora["id"])}
    for job in done.values():
        assert job["status"] == "completed", (job["error"], client.get(f"/api/v1/jobs/{job['id']}/log").text)
    return done


def generate(client, **body) -> dict:
    r = client.post(
        "/api/v1/text/generate", json={"prompt": PROMPT, "temperature": 0, "max_new_tokens": 10, **body}
    )
    assert r.status_code == 200, r.text
    return r.json()


def adapter_folder(client, adapter_id: str) -> Path:
    row = client.studio.store.query_one("SELECT path FROM adapters WHERE id = ?", (adapter_id,))
    return client.studio.data_dir / row["path"]


# -- training ----------------------------------------------------------------------------------
def test_a_full_fine_tune_learns_the_corpus_pattern_and_generates_it(client, jobs):
    job = jobs["full"]
    m = job["metrics"]
    print(f"\nfull: perplexity {m['perplexity_before']:.1f} → {m['perplexity_after']:.2f}, "
          f"{m['train_time_s']:.1f}s, {m['tokens_per_s']:.0f} tokens/s")  # fmt: skip
    assert m["method"] == "full" and job["step"] == 150 and job["progress"] == 1.0
    assert m["perplexity_after"] < 0.5 * m["perplexity_before"]
    assert m["eval_loss"] < m["eval_loss_before"] and m["train_time_s"] < 60

    events = [json.loads(line) for line in client.get(f"/api/v1/jobs/{job['id']}/events").text.splitlines()]
    assert [e["step"] for e in events] == list(range(1, 151))
    assert all({"loss", "lr", "tokens_per_s"} <= set(e) for e in events)
    samples = {e["step"]: e["sample_text"] for e in events if "sample_text" in e}
    assert sorted(samples) == [50, 100, 150] and "lazy dog" in samples[150]

    # The trained model is a text model like any other, and it has learned the pattern; the base has not.
    assert job["artifact"]["type"] == "text_model"
    model_id = job["artifact"]["id"]
    listed = {m["id"]: m for m in client.get("/api/v1/models").json()["text"]}
    assert listed[model_id]["source"] == "trained"
    trained = generate(client, model=model_id)
    assert trained["model"] == model_id and "the lazy dog" in trained["outputs"][0]["text"], trained
    base = generate(client, model=STARTER_TEXT)
    assert "lazy dog" not in base["outputs"][0]["text"]


def test_a_lora_job_saves_an_adapter_that_plain_peft_loads(client, jobs):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    job = jobs["lora"]
    assert job["metrics"]["method"] == "lora" and job["artifact"]["type"] == "text_adapter"
    adapter_id = job["artifact"]["id"]
    listed = {a["id"]: a for a in client.get("/api/v1/models").json()["text_adapters"]}
    assert listed[adapter_id]["base_model"] == STARTER_TEXT and listed[adapter_id]["job_id"] == job["id"]

    folder = adapter_folder(client, adapter_id)
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= {
        p.name for p in folder.iterdir()
    }
    assert "foxes" in (folder / "README.md").read_text()
    base = AutoModelForCausalLM.from_pretrained(client.studio.data_dir / "models" / "starter" / "gpt2-tiny")
    model = PeftModel.from_pretrained(base, folder)
    with torch.no_grad():
        assert model(torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, 1024)


def test_a_trained_model_can_be_the_base_of_a_lora_job(client, jobs, dataset_id):
    trained_id = jobs["full"]["artifact"]["id"]
    r = client.post("/api/v1/jobs", json={"kind": "text-lora", "dataset_id": dataset_id, "base_model": trained_id,
                                          "params": {"method": "lora", "max_steps": 3, "block_size": 64}})
    assert r.status_code == 201, r.text
    job = wait_job(client, r.json()["id"])
    assert job["status"] == "completed", job["error"]
    adapter_id = job["artifact"]["id"]
    adapters = {a["id"]: a for a in client.get("/api/v1/models").json()["text_adapters"]}
    assert adapters[adapter_id]["base_model"] == trained_id
    out = generate(client, adapter=adapter_id)
    assert out["model"] == trained_id and out["adapter"] == adapter_id


def test_cancel_checkpoints_and_resume_finishes_without_repeating_a_step(client, dataset_id):
    job = start_job(
        client, dataset_id, max_steps=300, batch_size=2, block_size=32, save_every=0, eval_fraction=0.05
    )
    deadline = time.monotonic() + 60
    while client.get(f"/api/v1/jobs/{job['id']}").json()["step"] < 3:
        assert time.monotonic() < deadline, client.get(f"/api/v1/jobs/{job['id']}/log").text
        time.sleep(0.1)
    cancelled = client.post(f"/api/v1/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and 3 <= cancelled["step"] < 300
    assert client.post(f"/api/v1/jobs/{job['id']}/resume").json()["status"] == "queued"
    done = wait_job(client, job["id"])
    assert done["status"] == "completed", done["error"]
    events = [json.loads(line) for line in client.get(f"/api/v1/jobs/{job['id']}/events").text.splitlines()]
    assert [e["step"] for e in events] == list(range(1, 301))
    assert "resumed from step" in client.get(f"/api/v1/jobs/{job['id']}/log?lines=200").text


# -- adapters ----------------------------------------------------------------------------------
def test_export_import_mix_and_switching_adapters_never_reloads_the_base(client, jobs):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    a = jobs["lora"]["artifact"]["id"]
    exported = client.get(f"/api/v1/adapters/{a}/export")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    r = client.post("/api/v1/adapters/import", files=[("file", ("a.zip", exported.content))],
                    data={"base_model": STARTER_TEXT, "name": "A again"})  # fmt: skip
    assert r.status_code == 201, r.text
    b = r.json()["id"]
    r = client.post("/api/v1/adapters/mix", json={"adapters": [{"id": a, "weight": 0.5}, {"id": b, "weight": 1.5}],
                                                  "name": "blend"})  # fmt: skip
    assert r.status_code == 201, r.text
    mixed = r.json()
    assert mixed["name"] == "blend" and [s["id"] for s in mixed["meta"]["sources"]] == [a, b]
    base = AutoModelForCausalLM.from_pretrained(client.studio.data_dir / "models" / "starter" / "gpt2-tiny")
    PeftModel.from_pretrained(base, adapter_folder(client, mixed["id"]))

    for adapter in (a, mixed["id"], None, b, a):
        out = generate(client, adapter=adapter) if adapter else generate(client, model=STARTER_TEXT)
        assert out["adapter"] == adapter and out["model"] == STARTER_TEXT
    assert client.studio.models.memory.load_counts[f"text:{STARTER_TEXT}"] == 1


def test_import_refuses_pickles_and_adapters_of_another_base(client, jobs):
    a = jobs["lora"]["artifact"]["id"]
    config = (adapter_folder(client, a) / "adapter_config.json").read_bytes()
    before = client.get("/api/v1/adapters").json()["adapters"]

    r = client.post("/api/v1/adapters/import", data={"base_model": STARTER_TEXT, "name": "pickled"},
                    files=[("file", ("adapter_config.json", config)), ("file", ("adapter_model.bin", b"\x80\x04K\x01."))])  # fmt: skip
    assert r.status_code == 415 and "safetensors" in r.json()["error"]["message"]

    other = json.loads(config)
    other["base_model_name_or_path"] = "openai-community/gpt2"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("adapter_config.json", json.dumps(other))
        zf.write(adapter_folder(client, a) / "adapter_model.safetensors", "adapter_model.safetensors")
    r = client.post("/api/v1/adapters/import", files=[("file", ("other.zip", buffer.getvalue()))],
                    data={"base_model": STARTER_TEXT, "name": "other"})  # fmt: skip
    assert r.status_code == 422 and "openai-community/gpt2" in r.json()["error"]["message"]

    for data in ({"name": "x", "colour": "red"}, {"name": ""}):
        r = client.post("/api/v1/adapters/import", files=[("file", ("a.zip", buffer.getvalue()))], data=data)
        assert r.status_code == 422, r.text
    assert client.get("/api/v1/adapters").json()["adapters"] == before
    assert not [p for p in (client.studio.data_dir / "tmp").iterdir() if p.name.startswith("upload-")]


def test_rename_merged_export_and_delete(client, jobs):
    full_id, a = jobs["full"]["artifact"]["id"], jobs["lora"]["artifact"]["id"]
    listed = {x["id"]: x for x in client.get("/api/v1/adapters").json()["adapters"]}
    assert listed[full_id]["type"] == "text_model" and listed[a]["type"] == "text_adapter"
    assert listed[a]["source"] == "trained"

    r = client.patch(f"/api/v1/adapters/{a}", json={"name": "my foxes"})
    assert r.status_code == 200 and r.json()["name"] == "my foxes"
    merged = client.get(f"/api/v1/adapters/{a}/export?merged=true")
    assert merged.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(merged.content)).namelist()
    assert f"{a}-merged/model.safetensors" in names and f"{a}-merged/tokenizer.json" in names
    # deployment in reduced precision: the merged weights are saved as bf16 safetensors
    from safetensors.torch import load

    bf16 = client.get(f"/api/v1/adapters/{a}/export?merged=true&precision=bf16")
    weights = load(zipfile.ZipFile(io.BytesIO(bf16.content)).read(f"{a}-merged/model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    assert client.get(f"/api/v1/adapters/{a}/export?merged=true&precision=int3").status_code == 422

    r = client.post("/api/v1/adapters/mix", json={"adapters": [{"id": a}, {"id": full_id}]})
    assert r.status_code == 422  # a full model is not an adapter
    assert client.delete(f"/api/v1/adapters/{full_id}").json() == {"deleted": full_id}
    assert full_id not in [m["id"] for m in client.get("/api/v1/models").json()["text"]]
    assert client.get(f"/api/v1/adapters/{full_id}").status_code == 404
    assert client.delete(f"/api/v1/adapters/{full_id}").status_code == 404


def test_only_admins_change_adapters(tmp_path):
    config = StudioConfig(
        data_dir=tmp_path / "data", offline=True, accounts=[("admin", "pw-admin"), ("bob", "pw-bob")]
    )
    bob = {"Authorization": "Basic " + base64.b64encode(b"bob:pw-bob").decode()}
    with TestClient(build_app(config, ui=False)) as c:
        assert c.get("/api/v1/adapters", headers=bob).json() == {"adapters": []}
        ad = "ad_0123456789abcdef"
        for method, path, kw in [
            ("patch", f"/adapters/{ad}", {"json": {"name": "x"}}),
            ("delete", f"/adapters/{ad}", {}),
            ("post", "/adapters/mix", {"json": {"adapters": [{"id": ad}, {"id": ad}]}}),
            ("post", "/adapters/import", {"files": [("file", ("a.zip", b"PK"))], "data": {"name": "x"}}),
        ]:
            r = getattr(c, method)("/api/v1" + path, headers=bob, **kw)
            assert r.status_code == 403, (path, r.text)
        assert c.get("/api/v1/adapters").status_code == 401

