"""`text-lora` with `num_processes: 2` on the CPU (two processes over gloo, accelerate's own launch):
it completes, its loss curve is the single-process run's within noise (the same global batch, split
between the processes), one set of checkpoints and one artifact that generates."""

from __future__ import annotations

import json
import math
import time

import pytest

from tests.api.test_text_lora_job import client, dataset_id, start_job, wait_job  # noqa: F401 (fixtures)

PARAMS = {"method": "full", "max_steps": 12, "batch_size": 8, "block_size": 32, "save_every": 6, "seed": 3,
          "eval_fraction": 0.1}


@pytest.mark.timeout(400)
def test_two_processes_learn_like_one_with_the_same_global_batch(client, dataset_id):  # noqa: F811
    one = wait_job(client, start_job(client, dataset_id, **PARAMS)["id"])
    two_job = start_job(client, dataset_id, **PARAMS, num_processes=2)
    command = client.get(f"/api/v1/jobs/{two_job['id']}").json()
    two = wait_job(client, two_job["id"], timeout=300)
    assert one["status"] == "completed" and two["status"] == "completed", (one, two)

    def curve(job_id: str) -> list[float]:
        lines = client.get(f"/api/v1/jobs/{job_id}/events").text.splitlines()
        return [e["loss"] for e in map(json.loads, lines) if "loss" in e]

    a, b = curve(one["id"]), curve(two["id"])
    assert len(a) == len(b) == 12
    assert all(math.isclose(x, y, rel_tol=0.02) for x, y in zip(a, b, strict=True)), (a, b)
    assert b[-1] < b[0] * 0.8  # and it learned
    assert math.isclose(one["metrics"]["eval_loss"], two["metrics"]["eval_loss"], rel_tol=0.02)

    log = client.get(f"/api/v1/jobs/{two['id']}/log").text
    assert "--num_processes 2" in " ".join(client.studio.jobs.command_for(two["id"])), command
    assert log.count("text-lora: done in") == 1  # one writer
    run = client.studio.jobs.run_dir(two["id"]).path
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-12", "step-6"]
    steps = [json.loads(line)["step"] for line in (run / "events.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))  # one event per step, not one per process
    out = client.post("/api/v1/text/generate", json={"prompt": "the red fox", "model": two["artifact"]["id"],
                                                     "max_new_tokens": 6, "seed": 1})
    assert out.status_code == 200 and out.json()["outputs"][0]["text"], out.text


@pytest.mark.timeout(400)
def test_two_processes_cancel_together_and_resume_without_repeating_a_step(client, dataset_id):  # noqa: F811
    job = start_job(client, dataset_id, max_steps=200, batch_size=2, block_size=32, save_every=0,
                    eval_fraction=0.05, num_processes=2)
    deadline = time.monotonic() + 120
    while client.get(f"/api/v1/jobs/{job['id']}").json()["step"] < 3:
        assert time.monotonic() < deadline, client.get(f"/api/v1/jobs/{job['id']}/log").text
        time.sleep(0.1)
    cancelled = client.post(f"/api/v1/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and 3 <= cancelled["step"] < 200, cancelled
    log = client.get(f"/api/v1/jobs/{job['id']}/log?lines=200").text
    assert log.count(f"stopped at step {cancelled['step']} on request") == 2, log  # both, at the same step
    assert client.post(f"/api/v1/jobs/{job['id']}/resume").json()["status"] == "queued"
    done = wait_job(client, job["id"], timeout=300)
    assert done["status"] == "completed", done["error"]
    events = [json.loads(line) for line in client.get(f"/api/v1/jobs/{job['id']}/events").text.splitlines()]
    assert [e["step"] for e in events] == list(range(1, 201)), client.get(f"/api/v1/jobs/{job['id']}/log?lines=60").text


def test_more_processes_than_cores_is_refused_with_the_limit(client, dataset_id):  # noqa: F811
    import os

    too_many = (os.cpu_count() or 1) + 1
    before = client.get("/api/v1/jobs").json()
    r = client.post("/api/v1/jobs", json={"kind": "text-lora", "dataset_id": dataset_id,
                                          "params": {"num_processes": too_many}})
    assert r.status_code == 422 and f"this machine has {too_many - 1}" in r.json()["error"]["message"], r.text
    assert client.get("/api/v1/jobs").json() == before  # nothing queued
