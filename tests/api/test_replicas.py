"""Two studio replicas on one PostgreSQL database and one data folder behave as one studio:
ratings, sessions and jobs cross between them; a job runs exactly once, on whichever replica
claims it; a cancel through the other replica stops it; and when the replica running a job is
killed with SIGKILL, the other settles the job as interrupted and runs it to the end on resume."""

import os
import signal
import time

import httpx
import pytest

from tests.conftest import start_studio
from tests.services.test_jobs import wait_for

pytestmark = pytest.mark.slow

ADMIN = ("admin", "replica-pass-1")
SLOW_JOB = {"kind": "selftest", "params": {"max_steps": 250, "save_every": 5, "step_delay_s": 0.05}}  # ~12 s


@pytest.fixture(scope="module")
def replicas(postgres, tmp_path_factory):
    """Two replicas on one database, shared by this module's tests: the job test, last, kills one."""
    url = postgres.new_database()
    data = tmp_path_factory.mktemp("replicas") / "data"
    args = ["--offline", "--database-url", url, "--auth", f"{ADMIN[0]}:{ADMIN[1]}"]
    started = [start_studio(args, data)]
    started.append(start_studio(args, data))
    yield started
    for live in started:
        live.stop()


def api(live, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, live.url + path, auth=ADMIN, timeout=60, **kw)


def job_row(live, job_id: str) -> dict:
    return api(live, "GET", f"/api/v1/jobs/{job_id}").json()


def owner_pid(replicas, job_id: str) -> int:
    """The pid of the replica that claimed the job, from the row's owner (host:pid:nonce)."""
    import psycopg

    url = replicas[0].proc.args[replicas[0].proc.args.index("--database-url") + 1]
    with psycopg.connect(url) as conn:
        owner = conn.execute("SELECT owner FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]
    return int(owner.split(":")[1])


def test_ratings_and_sessions_cross_between_replicas(replicas):
    a, b = replicas
    out = api(a, "POST", "/api/v1/text/generate", json={"prompt": "Hello", "max_new_tokens": 4, "seed": 1})
    assert out.status_code == 200, out.text
    output_id = out.json()["outputs"][0]["id"]
    ratings_seen = api(b, "GET", "/api/v1/changes").json()["topics"]["ratings"]
    assert api(a, "POST", "/api/v1/feedback", json={"output_id": output_id, "rating": "up"}).status_code == 200
    stats = api(b, "GET", "/api/v1/feedback/stats").json()
    assert (stats["total"], stats["up"]) == (1, 1)
    # the pages served by the other replica learn of it (their lists redraw)
    wait_for(lambda: api(b, "GET", "/api/v1/changes").json()["topics"]["ratings"] > ratings_seen, 10,
             "the other replica's change counter")
    # an admin setting changed through one applies on the other
    assert api(a, "PUT", "/api/v1/settings/precision", json={"speech": "bf16"}).status_code == 200
    wait_for(lambda: api(b, "GET", "/api/v1/settings/precision").json()["speech"] == "bf16", 10,
             "the setting to reach the other replica")

    signin = httpx.post(a.url + "/signin", data={"username": ADMIN[0], "password": ADMIN[1]})
    cookie = signin.history[0].cookies["studio_session"] if signin.history else signin.cookies["studio_session"]
    for live in (a, b):
        assert httpx.get(live.url + "/api/v1/me", cookies={"studio_session": cookie}).json()["user"] == "admin"
    r = httpx.post(b.url + "/signout", cookies={"studio_session": cookie}, follow_redirects=False)
    assert r.status_code == 303
    for live in (a, b):
        assert httpx.get(live.url + "/api/v1/me", cookies={"studio_session": cookie}).status_code == 401


def test_a_job_runs_once_is_cancelled_through_the_other_and_survives_its_replica_being_killed(replicas):
    a, b = replicas
    pids = {a.proc.pid: a, b.proc.pid: b}

    # A job created on one runs exactly once, on whichever replica claims it.
    first = api(a, "POST", "/api/v1/jobs", json=SLOW_JOB).json()["id"]
    wait_for(lambda: job_row(b, first)["step"] >= 3, what="the job to make progress")
    runner = pids[owner_pid(replicas, first)]
    other = b if runner is a else a

    # A cancel through the replica that does not run it reaches the process.
    r = api(other, "POST", f"/api/v1/jobs/{first}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    step_at_cancel = job_row(a, first)["step"]
    time.sleep(1.5)
    assert job_row(b, first)["step"] == step_at_cancel  # it stopped, and stays stopped

    # SIGKILL the replica running a job: the other settles it as interrupted, and it resumes to the end.
    second = api(other, "POST", "/api/v1/jobs", json=SLOW_JOB).json()["id"]
    wait_for(lambda: job_row(other, second)["step"] >= 12, what="a few checkpoints")
    runner = pids[owner_pid(replicas, second)]
    survivor = b if runner is a else a
    os.kill(runner.proc.pid, signal.SIGKILL)
    runner.proc.wait(10)
    interrupted = wait_for(lambda: (j := job_row(survivor, second))["status"] == "interrupted" and j, 30,
                           "the survivor to mark the job interrupted")
    assert "resume" in interrupted["error"].lower()
    steps_before = interrupted["step"]
    assert api(survivor, "POST", f"/api/v1/jobs/{second}/resume").status_code == 200
    done = wait_for(lambda: (j := job_row(survivor, second))["status"] in ("completed", "failed") and j, 120,
                    "the resumed job to finish")
    assert done["status"] == "completed", done
    assert done["step"] == SLOW_JOB["params"]["max_steps"] and steps_before < done["step"]

    # Each run of each job was started exactly once: one start line per launch in its log.
    for job_id, launches in ((first, 1), (second, 2)):
        log = api(survivor, "GET", f"/api/v1/jobs/{job_id}/log?lines=1000").text
        assert log.count("start: ") + log.count("resume: ") == launches, log[:2000]
