"""The outputs and ratings tables: one rating per person and output, replaced on re-rating."""

from studio.store import Store, new_id, outputs


def add_output(store: Store, *, kind: str = "text", model: str = "m", adapter: str | None = None) -> str:
    output_id = new_id("out_")
    outputs.insert(store, output_id, kind=kind, prompt="p", params={"seed": 1}, model=model, adapter=adapter,
                   seed=1, text="t", file=None, user="alice")
    return output_id


def test_a_rerating_replaces_the_first_and_unrating_removes_it(store):
    out = add_output(store)
    first = outputs.rate(store, out, "alice", "up", None)
    assert outputs.rate(store, out, "alice", "down", "meh") == first  # same row, new thumb
    outputs.rate(store, out, "bob", "up", None)
    assert outputs.rating_of(store, out, "alice") == "down"
    assert outputs.totals(store) == (2, 1, 1)
    outputs.unrate(store, out, "alice")
    assert outputs.rating_of(store, out, "alice") is None
    assert outputs.totals(store) == (1, 1, 0)


def test_ratings_are_counted_per_version_and_filtered_by_person(store):
    plain, tuned = add_output(store), add_output(store, adapter="ad_1")
    outputs.rate(store, plain, "alice", "up", None)
    outputs.rate(store, tuned, "alice", "down", None)
    outputs.rate(store, tuned, "bob", "down", "no")
    assert [(r["adapter"], r["up"], r["down"]) for r in outputs.per_version(store)] == [(None, 1, 0), ("ad_1", 0, 2)]
    assert {r["user"] for r in outputs.latest(store, user="bob")} == {"bob"}
    assert len(outputs.rated_outputs(store, version=("m", "ad_1"))) == 2
    assert outputs.exists(store, plain) and not outputs.exists(store, "out_0000000000000000")
    assert set(outputs.newest_ids(store, kind="text")) == {plain, tuned}
