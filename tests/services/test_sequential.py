"""The experiment's decision rule alone, against simulation: checked after every rating, it finds a
real difference and almost never declares one where there is none."""

from __future__ import annotations

import numpy as np

from studio.services.sequential import confidence_sequence, msprt

HORIZON = 4000  # ratings per simulated experiment (both arms together)


def run(p_a: float, p_b: float, seed: int) -> tuple[int | None, int]:
    """(winner, ratings used) of one experiment that looks after every single rating."""
    rng = np.random.default_rng(seed)
    arms = rng.integers(0, 2, HORIZON)
    thumbs = rng.random(HORIZON) < np.where(arms == 0, p_a, p_b)
    up, n = [0, 0], [0, 0]
    for k in range(HORIZON):
        n[arms[k]] += 1
        up[arms[k]] += int(thumbs[k])
        decision = msprt(up[0], n[0], up[1], n[1])
        if decision.winner is not None:
            return decision.winner, k + 1
    return None, HORIZON


def test_a_real_difference_is_found_for_the_right_arm():
    results = [run(0.40, 0.55, seed) for seed in range(200)]
    right = sum(winner == 1 for winner, _ in results)
    wrong = sum(winner == 0 for winner, _ in results)
    used = np.mean([k for _, k in results])
    print(f"0.40 vs 0.55: right {right}/200, wrong {wrong}/200, mean ratings to decision {used:.0f}")
    assert right >= 190 and wrong <= 2


def test_no_difference_is_almost_never_declared():
    results = [run(0.5, 0.5, 1000 + seed) for seed in range(200)]
    declared = sum(winner is not None for winner, _ in results)
    print(f"A/A: a winner declared in {declared}/200 while looking after every rating")
    assert declared <= 10


def test_the_confidence_sequence_covers_at_all_times():
    rng = np.random.default_rng(0)
    misses = 0
    for _ in range(200):
        p = rng.uniform(0.1, 0.9)
        thumbs = rng.random(2000) < p
        ups = np.cumsum(thumbs)
        if any(not (lo <= p <= hi) for lo, hi in (confidence_sequence(int(ups[n - 1]), n) for n in range(1, 2001))):
            misses += 1
    assert misses <= 10  # ≤ 5 % of the runs leave the interval even once
    lo, hi = confidence_sequence(400, 500)
    assert 0.7 < lo < 0.8 < hi < 0.9  # and it narrows as ratings come in
