"""Failed sign-ins kept in the database: two replicas' throttles (two SigninThrottle objects on
one store) count the same guesses, forget them after a quiet day, and stay bounded."""

import pytest

from studio.services.signin_throttle import SigninThrottle, SigninThrottled
from studio.store import signin_failures


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_guesses_spread_over_two_replicas_count_together(store):
    clock = Clock()
    a, b = (SigninThrottle(free_failures=5, base_s=1.0, clock=clock, shared=store) for _ in range(2))
    for i in range(5):  # alternate replicas: 5 failures in all
        (a if i % 2 else b).failed("admin", "203.0.113.7")
    for replica in (a, b):
        with pytest.raises(SigninThrottled):
            replica.check("admin", "198.51.100.1")  # the account's counter, from another address too
    a.succeeded("admin", "203.0.113.7")
    b.check("admin", "203.0.113.7")  # cleared for both
    assert signin_failures.count(store) == 0


def test_old_failures_are_forgotten_and_the_table_stays_bounded(store):
    signin_failures.add(store, "address", "192.0.2.1", 100.0, 50.0, 3)
    signin_failures.add(store, "address", "192.0.2.1", 120.0, 50.0, 3)
    assert signin_failures.get(store, "address", "192.0.2.1") == (2, 120.0)
    signin_failures.add(store, "address", "192.0.2.1", 200.0, 50.0, 3)  # a quiet spell: counting starts again
    assert signin_failures.get(store, "address", "192.0.2.1") == (1, 200.0)
    for i in range(5):
        signin_failures.add(store, "address", f"198.51.100.{i}", 201.0 + i, 50.0, 3)
    assert signin_failures.count(store) == 3  # the three most recent
    assert signin_failures.get(store, "address", "198.51.100.4") == (1, 205.0)
    assert signin_failures.get(store, "address", "192.0.2.1") is None
