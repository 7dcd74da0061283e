"""Training jobs through HTTP, on the real app (`build_app`), with real child processes."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
from fastapi.testclient import TestClient

from studio.app import build_app
from studio.config import StudioConfig


@pytest.fixture
def config(tmp_path):
    return StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu", job_grace_s=5)


def wait_job(client, job_id: str, until, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never got there: {job}")


def ndjson(response) -> list[dict]:
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def test_a_job_started_over_http_streams_events_and_completes_with_falling_loss(api_client):
    r = api_client.post(
        "/api/v1/jobs",
        json={"kind": "selftest", "params": {"max_steps": 16, "save_every": 4, "step_delay_s": 0.1}},
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "queued" and job["kind"] == "selftest" and job["total_steps"] == 16
    assert set(job) >= {"id", "progress", "step", "metrics", "artifact", "error", "created_at", "updated_at"}

    # A second job waits in the queue; cancelling and resuming it there works over HTTP too.
    second = api_client.post("/api/v1/jobs", json={"kind": "selftest", "params": {"max_steps": 2}}).json()
    assert api_client.get(f"/api/v1/jobs/{second['id']}").json()["status"] == "queued"
    r = api_client.post(f"/api/v1/jobs/{second['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = api_client.post(f"/api/v1/jobs/{second['id']}/resume")
    assert r.status_code == 200 and r.json()["status"] == "queued"

    running = wait_job(api_client, job["id"], lambda j: j["step"] >= 2)
    assert running["status"] == "running"
    pid = api_client.studio.store.query_one("SELECT pid FROM jobs WHERE id = ?", (job["id"],))["pid"]
    assert pid != os.getpid()
    streamed = ndjson(api_client.get(f"/api/v1/jobs/{job['id']}/events"))
    assert streamed and all({"step", "loss", "time"} <= set(e) for e in streamed)

    done = wait_job(api_client, job["id"], lambda j: j["status"] not in ("queued", "running"))
    assert done["status"] == "completed", done["error"]
    assert done["progress"] == 1.0 and done["step"] == 16 and done["artifact"] is None
    events = ndjson(api_client.get(f"/api/v1/jobs/{job['id']}/events"))
    assert [e["step"] for e in events] == list(range(1, 17))
    losses = [e["loss"] for e in events]
    assert sum(losses[-4:]) < sum(losses[:4])
    tail = ndjson(api_client.get(f"/api/v1/jobs/{job['id']}/events?since=14"))
    assert [e["step"] for e in tail] == [15, 16]

    log = api_client.get(f"/api/v1/jobs/{job['id']}/log?lines=5")
    assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
    assert "selftest: done" in log.text and len(log.text.splitlines()) <= 5
    assert [j["id"] for j in api_client.get("/api/v1/jobs").json()] == [second["id"], job["id"]]

    for action in ("cancel", "resume"):
        r = api_client.post(f"/api/v1/jobs/{job['id']}/{action}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    # The second job left in the queue is started next and stopped when the studio closes.


def test_kinds_route_lists_defaults_and_is_not_taken_for_an_id(api_client):
    r = api_client.get("/api/v1/jobs/kinds")
    assert r.status_code == 200
    kinds = {k["kind"]: k for k in r.json()}
    assert kinds["selftest"]["defaults"]["max_steps"] == 50
    assert {p["name"] for p in kinds["selftest"]["params"]} >= {"learning_rate", "batch_size", "seed"}


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"kind": "warp-drive"}, "selftest"),  # unknown kind: the message lists the available ones
        ({"kind": "selftest", "params": {"warp_speed": 9}}, "warp_speed"),  # unknown param
        ({"kind": "selftest", "params": {"max_steps": "lots"}}, "max_steps"),  # wrong type
        ({"kind": "selftest", "params": {"max_steps": 0}}, "max_steps"),  # out of range
        ({"kind": "selftest", "colour": "red"}, "colour"),  # unknown body field
        ({"params": {}}, "kind"),  # missing kind
    ],
)
def test_bad_job_requests_are_422_and_change_nothing(api_client, body, needle):
    r = api_client.post("/api/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_field" and needle in err["message"]
    assert api_client.get("/api/v1/jobs").json() == []
    assert list((api_client.studio.data_dir / "runs").iterdir()) == []


def test_unknown_job_ids_are_json_404s(api_client):
    for path in ("/jobs/job_0123456789abcdef", "/jobs/job_0123456789abcdef/events", "/jobs/nope/log"):
        r = api_client.get("/api/v1" + path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    for action in ("cancel", "resume"):
        assert api_client.post(f"/api/v1/jobs/job_0123456789abcdef/{action}").status_code == 404
    r = api_client.post("/api/v1/jobs", json={"kind": "selftest", "dataset_id": "ds_nothere"})
    assert r.status_code == 404


def test_only_admins_start_cancel_or_resume(tmp_path):
    config = StudioConfig(
        data_dir=tmp_path / "data",
        offline=True,
        device="cpu",
        accounts=[("ada", "pw-admin"), ("bob", "pw-user")],
        max_concurrent_jobs=0,  # nothing starts: this test is about permissions
    )

    def auth(user: str, password: str) -> dict:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    with TestClient(build_app(config, ui=False)) as client:
        body = {"kind": "selftest", "params": {"max_steps": 2}}
        assert client.post("/api/v1/jobs", json=body).status_code == 401
        denied = client.post("/api/v1/jobs", json=body, headers=auth("bob", "pw-user"))
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
        created = client.post("/api/v1/jobs", json=body, headers=auth("ada", "pw-admin"))
        assert created.status_code == 201
        job_id = created.json()["id"]
        assert client.get(f"/api/v1/jobs/{job_id}", headers=auth("bob", "pw-user")).status_code == 200
        assert client.post(f"/api/v1/jobs/{job_id}/cancel", headers=auth("bob", "pw-user")).status_code == 403
        cancelled = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=auth("ada", "pw-admin"))
        assert cancelled.json()["status"] == "cancelled"
