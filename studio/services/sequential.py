"""Always-valid statistics for live experiments: looking at the result after every rating does not
inflate false positives. Written here because the maintained libraries for this (confseq, the
R package `gsDesign`) are not installable on these machines or not in Python; the formulas are
short and each is tested against simulation in tests/services/test_sequential.py.

- `msprt`: the mixture sequential probability ratio test for a difference of two approval rates
  (Johari, Koomen, Pekelis, Walsh, "Peeking at A/B Tests", KDD 2017, §4: normal mixture over the
  difference with variance τ², normal approximation of the difference of means). It declares B
  better (or worse) than A once the mixture likelihood ratio reaches 1/α; until then, nothing.
- `confidence_sequence`: an always-valid interval around one arm's approval (Howard, Ramdas,
  McAuliffe, Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences",
  eq. (14): the normal-mixture boundary for 1/2-sub-Gaussian observations, optimised at n₀)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_PER_ARM = 20  # the normal approximation needs a few ratings per arm before it may decide


@dataclass(frozen=True)
class Decision:
    winner: int | None  # 0 = arm A, 1 = arm B, None = not decided (yet)
    likelihood_ratio: float  # the mixture likelihood ratio; decided at ≥ 1/α
    p_value: float  # always valid: min(1, 1/LR), to be read as the running minimum
    difference: float  # approval(B) - approval(A)


def msprt(up_a: int, n_a: int, up_b: int, n_b: int, *, alpha: float = 0.05, tau: float = 0.1) -> Decision:
    """Is B's approval different from A's? Valid at every n, however often it is asked."""
    if n_a < MIN_PER_ARM or n_b < MIN_PER_ARM:
        return Decision(None, 1.0, 1.0, (up_b / n_b if n_b else 0.0) - (up_a / n_a if n_a else 0.0))
    p_a, p_b = up_a / n_a, up_b / n_b
    pooled = (up_a + up_b) / (n_a + n_b)
    variance = max(pooled * (1 - pooled), 1e-6) * (1 / n_a + 1 / n_b)  # of the difference's estimate
    diff = p_b - p_a
    t2 = tau * tau
    log_lr = 0.5 * math.log(variance / (variance + t2)) + diff * diff * t2 / (2 * variance * (variance + t2))
    lr = math.exp(min(log_lr, 700.0))
    winner = (1 if diff > 0 else 0) if lr >= 1 / alpha else None
    return Decision(winner, lr, min(1.0, 1 / lr), diff)


def confidence_sequence(up: int, n: int, *, alpha: float = 0.05, n0: int = 50) -> tuple[float, float]:
    """An interval that holds the arm's true approval at every n at once with probability 1 - α."""
    if n == 0:
        return 0.0, 1.0
    rho = n0 / 4  # the mixture's scale, in intrinsic time (n × σ², σ² = 1/4): tightest near n0 ratings
    v = n / 4  # intrinsic time: n × σ²
    radius = math.sqrt(2 * (v + rho) * math.log(math.sqrt((v + rho) / rho) / alpha)) / n
    mean = up / n
    return max(0.0, mean - radius), min(1.0, mean + radius)
