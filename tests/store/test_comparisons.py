"""The comparisons table: a pair takes one vote, and decided text pairs become DPO rows' sources."""

from studio.store import Store, comparisons, new_id
from studio.store import outputs as output_rows


def add_output(store: Store, adapter: str | None, text: str) -> str:
    output_id = new_id("out_")
    output_rows.insert(store, output_id, kind="text", prompt="p", params={}, model="m", adapter=adapter, seed=1,
                       text=text, file=None, user="alice")
    return output_id


def test_a_comparison_takes_one_vote_and_then_counts(store):
    a, b = add_output(store, None, "plain"), add_output(store, "ad_1", "tuned")
    comparisons.create(store, "cmp_1", kind="text", prompt="p", a_output_id=a, b_output_id=b, user="alice")
    assert comparisons.get(store, "cmp_1")["winner"] is None
    assert comparisons.voted(store, "text") == []
    assert comparisons.vote(store, "cmp_1", "b") is True
    assert comparisons.vote(store, "cmp_1", "a") is False  # the first vote stands
    assert comparisons.vote(store, "cmp_none", "a") is False
    [match] = comparisons.voted(store, "text")
    assert (match["winner"], match["aa"], match["ba"]) == ("b", None, "ad_1")
    [pair] = comparisons.decided_text_pairs(store, version=("m", "ad_1"))
    assert (pair["a_text"], pair["b_text"]) == ("plain", "tuned")
    assert comparisons.decided_text_pairs(store, user="bob") == []
