"""The experiments tables: one running experiment per kind, which arm served which output (several
at once), tallies of the thumbs per arm, the audit trail of decisions."""

import pytest

from studio.store import IntegrityError, experiments, new_id, outputs


def test_arms_record_outputs_and_tally_their_thumbs(store):
    exp = experiments.create(store, name="ab", kind="text", arms=[{"model": "m"}, {"model": "m", "adapter": "a"}],
                             weights=[0.5, 0.5], min_samples=2, auto_promote=True, user="admin")
    with pytest.raises(IntegrityError):  # one running experiment per kind
        experiments.create(store, name="again", kind="text", arms=[{"model": "m"}], weights=[1.0], min_samples=1,
                           auto_promote=False, user="admin")
    ids = []
    for arm in (0, 0, 1):
        output_id = new_id("out_")
        outputs.insert(store, output_id, kind="text", prompt="p", params={}, model="m", adapter=None, seed=1,
                       text="t", file=None, user="alice")
        ids.append((arm, output_id))
    experiments.record_outputs(store, exp, 0, [o for a, o in ids if a == 0])  # a batch of two at once
    experiments.record_outputs(store, exp, 1, [o for a, o in ids if a == 1])
    assert experiments.arm_of(store, ids[2][1]) == (exp, 1)
    for (_arm, output_id), thumb in zip(ids, ("up", "down", "up"), strict=True):
        outputs.rate(store, output_id, "bob", thumb, None)
    assert experiments.tallies(store, exp) == {0: (2, 1), 1: (1, 1)}
    assert [r for _, r in experiments.history(store, exp)] == ["up", "down", "up"]
    row = experiments.running(store, "text")
    assert row["id"] == exp and row["auto_promote"] == 1 and row["arms"][1]["adapter"] == "a"
    assert experiments.end(store, exp, "concluded", {"winner": 1}) and not experiments.end(store, exp, "stopped", {})
    experiments.mark_promoted(store, exp, user="admin", evidence={"approval": [0.5, 1.0]})
    assert experiments.get(store, exp)["promoted"] == 1
    assert [a["action"] for a in experiments.audit_rows(store, exp)] == ["experiment.promote"]
