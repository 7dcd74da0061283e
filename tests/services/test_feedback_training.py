"""Which pair "compare newest" offers: the newest feedback-tuned version against its parent."""

import json

from studio.services.feedback_training import FeedbackTrainingService
from studio.store import Store, adapters


def add_tuned(store: Store, job_id: str, adapter_id: str, parent: str, created_at: str) -> None:
    with store.transaction() as c:
        c.execute("INSERT INTO jobs (id, kind, base_model, params, status, created_at, updated_at) "
                  "VALUES (?, 'text-feedback', 'gpt2', ?, 'completed', ?, ?)",
                  (job_id, json.dumps({"adapter": parent}), created_at, created_at))
    adapters.insert(store, id=adapter_id, name=adapter_id, type="text_adapter", base_model="gpt2", job_id=job_id,
                    path=f"models/trained/{job_id}", meta={}, created_at=created_at)


def test_the_newest_tuned_version_is_paired_with_the_one_it_was_tuned_from(tmp_path):
    store = Store(tmp_path / "studio.db")
    service = FeedbackTrainingService(store, text=None, data_dir=tmp_path)
    assert service.newest_tuned() is None
    add_tuned(store, "job_1", "ad_first", "", "2030-01-01T00:00:00.000Z")
    assert service.newest_tuned() == ("gpt2+ad_first", "gpt2")  # tuned from the plain base
    add_tuned(store, "job_2", "ad_second", "ad_first", "2030-01-02T00:00:00.000Z")
    assert service.newest_tuned() == ("gpt2+ad_second", "gpt2+ad_first")
