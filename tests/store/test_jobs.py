"""The jobs table: queued in order, running, progress, and a final status written together with
the adapters row of what the job made."""

import pytest

from studio.store import IntegrityError, adapters, jobs


def test_a_job_goes_from_queued_to_completed_with_its_artifact_in_one_write(store):
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


def test_a_failed_artifact_write_leaves_the_job_as_it_was(store):
    jobs.create(store, "job_1", kind="gan", dataset_id=None, base_model=None, params={}, total_steps=5)
    jobs.mark_running(store, "job_1", 1)
    bad = {"id": "ad_1", "name": "n", "type": "not-a-type", "base_model": "", "job_id": "job_1", "path": "p",
           "meta": {}}
    with pytest.raises(IntegrityError):
        jobs.settle(store, "job_1", status="completed", metrics={}, error=None, progress=1.0, artifact=bad)
    assert jobs.get(store, "job_1")["status"] == "running"
    with pytest.raises(IntegrityError):  # no such dataset
        jobs.create(store, "job_2", kind="text-lora", dataset_id="ds_missing", base_model=None, params={},
                    total_steps=1)


def test_replicas_claiming_at_once_take_each_job_exactly_once(store):
    """Four replicas (threads, each with its own connection) race for twenty queued jobs."""
    import threading

    for i in range(20):
        jobs.create(store, f"job_{i:02d}", kind="selftest", dataset_id=None, base_model=None, params={},
                    total_steps=1)
    taken: dict[str, list[str]] = {f"r{i}": [] for i in range(4)}
    start = threading.Barrier(4)

    def replica(owner: str) -> None:
        start.wait()
        while (row := jobs.claim(store, owner, "2999-01-01T00:00:00.000Z")) is not None:
            taken[owner].append(row["id"])
            assert (row["status"], row["owner"]) == ("running", owner)

    threads = [threading.Thread(target=replica, args=(owner,)) for owner in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = [job_id for ids in taken.values() for job_id in ids]
    assert sorted(claimed) == [f"job_{i:02d}" for i in range(20)]  # every job once, none twice


def test_a_lapsed_lease_is_taken_over_once_and_a_live_one_never(store):
    jobs.create(store, "job_1", kind="selftest", dataset_id=None, base_model=None, params={}, total_steps=1)
    jobs.claim(store, "host-a:1:x", "2030-01-01T00:00:10.000Z")
    a = "host-a:1:x"
    assert not jobs.take_over(store, "job_1", "host-b:2:y", "2030-01-01T00:01:00.000Z", was=a,
                              now="2030-01-01T00:00:05.000Z")  # the lease still holds
    assert jobs.renew(store, a, "2030-01-01T00:00:20.000Z") == {"job_1"}
    assert not jobs.take_over(store, "job_1", "host-b:2:y", "2030-01-01T00:01:00.000Z", was=a,
                              now="2030-01-01T00:00:15.000Z")  # renewed in time
    assert jobs.take_over(store, "job_1", "host-b:2:y", "2030-01-01T00:01:00.000Z", was=a,
                          now="2030-01-01T00:00:25.000Z")
    # c read the row while a owned it: it cannot take it from b, lapsed lease or known-dead owner alike
    assert not jobs.take_over(store, "job_1", "host-c:3:z", "2030-01-01T00:01:00.000Z", was=a,
                              now="2030-01-01T00:05:00.000Z")
    assert not jobs.take_over(store, "job_1", "host-c:3:z", "2030-01-01T00:01:00.000Z", was=a, now=None)
    assert jobs.get(store, "job_1")["owner"] == "host-b:2:y"
    assert jobs.renew(store, a, "2030-01-01T00:02:00.000Z") == set()  # a learns it lost the job
    # only the owner settles it
    assert not jobs.settle(store, "job_1", status="interrupted", metrics={}, error=None, progress=None,
                           artifact=None, owner=a)
    assert jobs.request_cancel(store, "job_1") and jobs.cancel_requested(store, "host-b:2:y") == {"job_1"}
    assert jobs.settle(store, "job_1", status="cancelled", metrics={}, error=None, progress=None, artifact=None,
                       owner="host-b:2:y")
    assert not jobs.request_cancel(store, "job_1") and jobs.cancel_requested(store, "host-b:2:y") == set()
