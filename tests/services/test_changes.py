"""The change signal the page redraws its lists by: every service that adds, renames, deletes,
finishes or rates something moves its topic's counter, and nothing else does."""

from __future__ import annotations

import pytest

from studio.config import StudioConfig
from studio.services.changes import DATASETS, MODELS, RATINGS, Changes
from studio.services.datasets import IncomingFile
from studio.services.studio import Studio


@pytest.fixture
def studio(tmp_path):
    studio = Studio(StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu"))
    yield studio
    studio.close()


def test_counters_move_per_topic_and_unknown_topics_are_refused():
    changes = Changes()
    before = changes.version(MODELS, DATASETS)
    changes.bump(MODELS)
    assert changes.version(MODELS, DATASETS) == (before[0] + 1, before[1])
    with pytest.raises(ValueError, match="known"):
        changes.bump("modles")


def test_a_dataset_added_or_deleted_moves_the_datasets_counter(studio, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(f"Paragraph {i} about foxes." for i in range(5)), encoding="utf-8")
    start = studio.changes.version(DATASETS)
    ds = studio.datasets.create([IncomingFile(name="c.txt", path=corpus)], "text", "foxes")
    assert studio.changes.version(DATASETS) == (start[0] + 1,)
    studio.datasets.delete(ds["id"])
    assert studio.changes.version(DATASETS) == (start[0] + 2,)
    assert studio.changes.version(MODELS, RATINGS) == (0, 0)


def test_a_rating_moves_the_ratings_counter(studio):
    out = studio.outputs.record(kind="text", prompt="the", params={}, model="m", adapter=None, seed=1, user="t",
                                text="the fox")
    studio.feedback.rate(out["id"], "up", "t")
    assert studio.changes.version(RATINGS) == (1,)
