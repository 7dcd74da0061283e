"""The job runner as one of several replicas on one database: a replica with no room for jobs
leaves them to another; a job owned by a replica on another host is left alone while its lease
holds and settled as interrupted once it lapses (the owner died); a cancel asked for by the row
stops a job the runner runs."""

from __future__ import annotations

import pytest

from studio.services.jobs import JobService
from studio.store import jobs as table
from tests.services.test_jobs import SLOW, make_service, wait_status, wait_step


@pytest.fixture
def pair(tmp_path):
    """A generation-only replica (no room for jobs) and a training one, on one data folder and database."""
    serving = make_service(tmp_path, max_concurrent_jobs=0, job_lease_s=3.0)
    training = make_service(tmp_path, job_lease_s=3.0)
    yield serving, training
    serving.shutdown()
    training.shutdown()


def test_a_replica_without_room_for_jobs_leaves_them_to_one_with_room(pair):
    serving, training = pair
    job = serving.create("selftest", params={"max_steps": 3})
    serving.recover()
    assert serving.get(job["id"])["status"] == "queued"  # nobody with room has looked yet
    training.recover()
    done = wait_status(serving, job["id"], ("completed", "failed"))
    assert done["status"] == "completed"
    row = table.get(serving.store, job["id"])
    assert row["owner"] == training.runner.replica


def test_a_job_of_a_replica_on_another_host_is_settled_once_its_lease_lapses(pair):
    serving, _ = pair
    job = serving.create("selftest", params={"max_steps": 3})
    lease = serving.runner.config.job_lease_s
    from studio.services.job_replicas import lease_until

    assert table.claim(serving.store, "elsewhere:4242:abcd", lease_until(lease))["id"] == job["id"]
    serving.recover()
    assert serving.get(job["id"])["status"] == "running"  # its owner may be alive: the lease holds
    settled = wait_status(serving, job["id"], ("interrupted",), timeout=lease + 10)
    assert "resume" in settled["error"].lower()


def test_a_cancel_asked_by_the_row_stops_the_job_here(tmp_path):
    jobs: JobService = make_service(tmp_path)
    try:
        job = jobs.create("selftest", params=SLOW)
        wait_step(jobs, job["id"], 2)
        assert table.request_cancel(jobs.store, job["id"])  # as another replica's cancel does
        stopped = wait_status(jobs, job["id"], ("cancelled",), timeout=20)
        assert stopped["step"] < SLOW["max_steps"]
    finally:
        jobs.shutdown()


def test_a_replica_that_lost_its_lease_stops_its_trainer_and_leaves_the_row_to_the_other(tmp_path):
    """Its lease lapsed (a stall, a database outage) and another replica settled the job: this one
    stops the trainer at its next renewal and does not write over the other's status."""
    from studio.services.job_processes import group_alive
    from tests.services.test_jobs import wait_for

    jobs: JobService = make_service(tmp_path, job_lease_s=3.0)
    try:
        job = jobs.create("selftest", params=SLOW)
        wait_step(jobs, job["id"], 2)
        row = table.get(jobs.store, job["id"])
        pid = row["pid"]
        assert table.take_over(jobs.store, job["id"], "elsewhere:1:x", "2999-01-01T00:00:00.000Z",
                               was=jobs.runner.replica, now="2999-01-01T00:00:00.000Z")
        assert table.settle(jobs.store, job["id"], status="interrupted", metrics={}, error="settled elsewhere",
                            progress=None, artifact=None, owner="elsewhere:1:x")
        wait_for(lambda: not group_alive(pid), 20, "the trainer to stop")
        wait_for(lambda: job["id"] not in jobs.runner._runs, 20, "the runner to let the job go")
        settled = jobs.get(job["id"])
        assert (settled["status"], settled["error"]) == ("interrupted", "settled elsewhere")
    finally:
        jobs.shutdown()
