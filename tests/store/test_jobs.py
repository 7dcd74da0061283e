"""The jobs table: queued in order, running, progress, and a final status written together with
the adapters row of what the job made."""

import sqlite3

import pytest

from studio.store import Store, adapters, jobs


def test_a_job_goes_from_queued_to_completed_with_its_artifact_in_one_write(tmp_path):
    store = Store(tmp_path / "studio.db")
    jobs.create(store, "job_1", kind="text-lora", dataset_id=None, base_model="gpt2", params={"adapter": "ad_x"},
                total_steps=10)
    jobs.create(store, "job_2", kind="gan", dataset_id=None, base_model=None, params={}, total_steps=5)
    assert [r["id"] for r in jobs.next_queued(store, 5)] == ["job_1", "job_2"]  # longest waiting first
    assert [r["id"] for r in jobs.all_(store, limit=1)] == ["job_2"]
    assert jobs.active_using(store, "ad_x") == ["job_1"]
    jobs.mark_running(store, "job_1", 4242)
    jobs.record_progress(store, "job_1", step=5, total_steps=10, progress=0.5, metrics={"loss": 1.0})
    assert [r["pid"] for r in jobs.running(store)] == [4242]
    jobs.settle(store, "job_1", status="completed", metrics={"loss": 0.5}, error=None, progress=1.0,
                artifact={"id": "ad_1", "name": "n", "type": "text_adapter", "base_model": "gpt2", "job_id": "job_1",
                          "path": "runs/job_1/adapter", "meta": {"kind": "text-lora"}})
    row = jobs.get(store, "job_1")
    assert (row["status"], row["pid"], row["artifact_id"], row["progress"]) == ("completed", None, "ad_1", 1.0)
    assert adapters.get(store, "ad_1")["job_id"] == "job_1"
    jobs.set_status(store, "job_2", "cancelled", from_status="running")  # it was not running: unchanged
    assert jobs.statuses(store) == {"job_1": "completed", "job_2": "queued"}
    jobs.set_status(store, "job_2", "cancelled", from_status="queued")
    assert jobs.statuses(store)["job_2"] == "cancelled"
    jobs.requeue(store, "job_2")  # a resume
    assert jobs.statuses(store)["job_2"] == "queued"


def test_a_failed_artifact_write_leaves_the_job_as_it_was(tmp_path):
    store = Store(tmp_path / "studio.db")
    jobs.create(store, "job_1", kind="gan", dataset_id=None, base_model=None, params={}, total_steps=5)
    jobs.mark_running(store, "job_1", 1)
    bad = {"id": "ad_1", "name": "n", "type": "not-a-type", "base_model": "", "job_id": "job_1", "path": "p",
           "meta": {}}
    with pytest.raises(sqlite3.IntegrityError):
        jobs.settle(store, "job_1", status="completed", metrics={}, error=None, progress=1.0, artifact=bad)
    assert jobs.get(store, "job_1")["status"] == "running"
    with pytest.raises(sqlite3.IntegrityError):  # no such dataset
        jobs.create(store, "job_2", kind="text-lora", dataset_id="ds_missing", base_model=None, params={},
                    total_steps=1)
