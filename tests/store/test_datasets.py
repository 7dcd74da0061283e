"""The datasets table: a row is deleted only when no queued or running job uses it, and only
together with what the caller does inside the transaction."""

import pytest

from studio.store import Store, datasets, utcnow


def add_dataset(store: Store, dataset_id: str = "ds_0000000000000001") -> str:
    datasets.insert(store, id=dataset_id, name="d", kind="text", num_items=3, stats={"rows": 3}, warnings=[],
                    created_at=utcnow())
    return dataset_id


def test_a_dataset_round_trips_with_its_json_fields(store):
    dataset_id = add_dataset(store)
    assert datasets.get(store, dataset_id)["stats"] == {"rows": 3}
    assert [d["id"] for d in datasets.all_(store)] == [dataset_id]
    assert datasets.ids(store) == {dataset_id}


def test_delete_is_refused_while_a_job_trains_on_it_and_undone_when_the_caller_fails(store):
    dataset_id = add_dataset(store)
    with store.transaction() as c:
        c.execute("INSERT INTO jobs (id, kind, dataset_id, status, created_at, updated_at) "
                  "VALUES ('job_1', 'text-lora', ?, 'running', ?, ?)", (dataset_id, utcnow(), utcnow()))
    assert datasets.delete_unless_in_use(store, dataset_id, before_commit=lambda: None) == (False, "job_1")
    with store.transaction() as c:
        c.execute("UPDATE jobs SET status = 'completed' WHERE id = 'job_1'")

    def fail() -> None:
        raise OSError("the folder would not move")

    with pytest.raises(OSError):
        datasets.delete_unless_in_use(store, dataset_id, before_commit=fail)
    assert datasets.get(store, dataset_id) is not None  # rolled back
    assert datasets.delete_unless_in_use(store, dataset_id, before_commit=lambda: None) == (True, None)
    assert datasets.delete_unless_in_use(store, dataset_id, before_commit=lambda: None) == (False, None)
