"""`GET /api/v1/changes`, what an open page polls instead of a Gradio event per tick: the counters
move with what the lists show (jobs, ratings, experiments), and `activity` moves while a job does,
for admins only."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from studio.app import build_app
from studio.config import StudioConfig

ADA, BOB = ("ada", "pw-ada"), ("bob", "pw-bob")  # ada is the admin


@pytest.fixture
def client(tmp_path):
    config = StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu", accounts=[ADA, BOB],
                          guest_access="generate", max_concurrent_jobs=0)  # jobs stay queued
    with TestClient(build_app(config, ui=False)) as c:
        c.studio = c.app.state.studio
        yield c


def changes(client, who=None) -> dict:
    r = client.get("/api/v1/changes", auth=who)
    assert r.status_code == 200, r.text
    return r.json()


def test_counters_move_with_jobs_and_ratings_and_activity_is_the_admins(client):
    before = changes(client, ADA)
    assert set(before["topics"]) == {"models", "datasets", "jobs", "ratings", "experiments", "settings"}
    assert before["activity"] == ""  # nothing runs
    job = client.post("/api/v1/jobs", json={"kind": "selftest", "params": {"max_steps": 2}}, auth=ADA).json()
    queued = changes(client, ADA)
    assert queued["topics"]["jobs"] == before["topics"]["jobs"] + 1
    assert queued["activity"] and queued == changes(client, ADA)  # the same answer while nothing moves
    client.studio.jobs.run_dir(job["id"]).log_path.write_text("loading the model\n")
    assert changes(client, ADA)["activity"] != queued["activity"]  # the log grew: the job view redraws
    for who in (BOB, None):  # people and visitors learn nothing about the jobs
        assert changes(client, who)["activity"] == ""

    oid = client.post("/api/v1/text/generate", json={"prompt": "Once", "max_new_tokens": 2},
                      auth=BOB).json()["outputs"][0]["id"]
    r = client.post("/api/v1/feedback", json={"output_id": oid, "rating": "up"}, auth=BOB)
    assert r.status_code == 200, r.text
    assert changes(client, BOB)["topics"]["ratings"] == before["topics"]["ratings"] + 1


def test_starting_and_stopping_an_experiment_moves_its_counter(client):
    models = client.studio.data_dir / "models"
    client.post("/api/v1/text/generate", json={"prompt": "x", "max_new_tokens": 1}, auth=ADA)  # builds the starter
    shutil.copytree(models / "starter" / "gpt2-tiny", models / "local" / "text" / "gpt2-copy")
    start = changes(client, ADA)["topics"]["experiments"]
    exp = client.post("/api/v1/experiments", auth=ADA, json={
        "name": "copy vs starter", "arms": [{"model": "starter/gpt2-tiny"}, {"model": "local/text/gpt2-copy"}]})
    assert exp.status_code == 201, exp.text
    assert changes(client, ADA)["topics"]["experiments"] == start + 1
    assert client.post(f"/api/v1/experiments/{exp.json()['id']}/stop", auth=ADA).status_code == 200
    assert changes(client, ADA)["topics"]["experiments"] == start + 2


def test_without_guest_access_a_visitor_is_refused(tmp_path):
    config = StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu", accounts=[ADA])
    with TestClient(build_app(config, ui=False)) as c:
        assert c.get("/api/v1/changes").status_code == 401
        assert c.get("/api/v1/changes", auth=ADA).status_code == 200
