"""Sign-in throttling: back-off per account and per address, bounded memory, no lock-out of loopback."""

import pytest

from studio.services import auth as auth_module
from studio.services.auth import AuthService
from studio.services.signin_throttle import SigninThrottle, SigninThrottled
from studio.store import Store


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle, account, address, times):
    for _ in range(times):
        throttle.check(account, address)
        throttle.failed(account, address)


def test_a_handful_of_failures_then_doubling_back_off():
    clock = Clock()
    t = SigninThrottle(free_failures=5, base_s=1.0, cap_s=900.0, clock=clock)
    fail(t, "admin", "203.0.113.1", 5)
    with pytest.raises(SigninThrottled) as caught:
        t.check("admin", "203.0.113.1")
    assert caught.value.status == 429 and caught.value.retry_after == 1
    assert caught.value.headers == {"Retry-After": "1"}
    clock.now += 1.01
    fail(t, "admin", "203.0.113.1", 1)  # the 6th failure: 2 s
    with pytest.raises(SigninThrottled) as caught:
        t.check("admin", "203.0.113.1")
    assert caught.value.retry_after == 2


def test_back_off_is_capped():
    clock = Clock()
    t = SigninThrottle(free_failures=5, base_s=1.0, cap_s=900.0, clock=clock)
    for _ in range(40):
        clock.now += 10_000
        fail(t, "admin", "203.0.113.1", 1)
    with pytest.raises(SigninThrottled) as caught:
        t.check("admin", "203.0.113.1")
    assert caught.value.retry_after == 900


def test_the_account_is_locked_from_every_address_but_loopback():
    clock = Clock()
    t = SigninThrottle(clock=clock)
    for n in range(5):  # an attacker spreading guesses over many addresses
        fail(t, "admin", f"203.0.113.{n}", 1)
    with pytest.raises(SigninThrottled):
        t.check("admin", "198.51.100.7")
    t.check("admin", "127.0.0.1")  # the owner at the machine is never locked out by the account lock
    t.check("admin", "::1")
    t.check("bob", "198.51.100.7")  # other accounts are unaffected


def test_loopback_is_throttled_per_address_only():
    clock = Clock()
    t = SigninThrottle(clock=clock)
    fail(t, "admin", "127.0.0.1", 5)
    with pytest.raises(SigninThrottled):
        t.check("admin", "127.0.0.1")
    t.check("admin", "203.0.113.1")  # the account itself was not locked by loopback failures


def test_success_resets_the_counters():
    clock = Clock()
    t = SigninThrottle(clock=clock)
    fail(t, "admin", "203.0.113.1", 5)
    clock.now += 2
    t.check("admin", "203.0.113.1")
    t.succeeded("admin", "203.0.113.1")
    fail(t, "admin", "203.0.113.1", 4)  # a fresh handful again
    t.check("admin", "203.0.113.1")


def test_counters_stay_bounded():
    clock = Clock()
    t = SigninThrottle(max_entries=100, clock=clock)
    for n in range(10_000):
        t.failed(None, f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert t.size() <= 200


def test_ten_thousand_wrong_passwords_do_not_grow_memory(tmp_path, monkeypatch):
    # scrypt costs ~50 ms; the verdict here is about what is kept, not how it is computed
    monkeypatch.setattr(auth_module, "verify_password", lambda password, stored: password == "right")
    clock = Clock()
    auth = AuthService([("admin", "scrypt$x$y")], "none", Store(tmp_path / "studio.db"))
    auth.throttle = SigninThrottle(max_entries=500, clock=clock)
    for n in range(10_000):
        clock.now += 1000  # past every lock: each guess is really verified
        address = f"10.1.{n // 256}.{n % 256}"
        assert auth.check_password("admin", f"wrong-{n}", address=address) is None
    assert auth.memory_size() <= 1000
    clock.now += 1000
    assert auth.check_password("admin", "right", address="10.2.0.1") is not None


def test_unknown_accounts_are_throttled_by_address():
    clock = Clock()
    t = SigninThrottle(clock=clock)
    fail(t, None, "203.0.113.1", 5)
    with pytest.raises(SigninThrottled):
        t.check("anyone", "203.0.113.1")
