"""Password guessing gets slow: failure counters per account and per client address, with an
exponential back-off once a handful of attempts have failed.

The rule (also in the README): after 5 failures, attempts wait 1 s, then 2, 4, … up to 15 min
(answered 429 with Retry-After); a success clears the counters, and so does a day without
failures. The account counter applies from every address except loopback: an attacker elsewhere
can slow sign-ins to an account, but never lock its owner out of the machine the studio runs
on — loopback is throttled per address only. Counters live in memory (one process), in
dictionaries of bounded size; with replicas on one PostgreSQL database they live in its
`signin_failures` table instead (`shared=`), so guesses spread over replicas count together.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from studio.services.errors import StudioError
from studio.store import signin_failures as failures_table


class SigninThrottled(StudioError):
    status, code = 429, "too_many_attempts"

    def __init__(self, retry_after: int):
        super().__init__(f"Too many failed sign-ins. Try again in {retry_after} seconds.")
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address((address or "").strip("[]")).is_loopback
    except ValueError:
        return False


def address_key(address: str) -> str:
    """IPv6 clients usually hold a whole /64: count them as one, or each guess could use a new address."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address[:100]
    if ip.version == 6 and not ip.is_loopback:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class _Counters:
    """Failure counts by key; the least recently touched are forgotten beyond `max_entries`."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self.entries: OrderedDict[str, _Failures] = OrderedDict()

    def get(self, key: str) -> _Failures | None:
        return self.entries.get(key)

    def add(self, key: str, now: float, forget_s: float) -> None:
        entry = self.entries.pop(key, None) or _Failures()
        if now - entry.last > forget_s:
            entry.count = 0
        entry.count += 1
        entry.last = now
        self.entries[key] = entry
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    def clear(self, key: str) -> None:
        self.entries.pop(key, None)

    def __len__(self) -> int:
        return len(self.entries)


class _SharedCounters:
    """The same counters in the database (`scope` = account | address), for replicas."""

    def __init__(self, store, scope: str, max_entries: int):
        self.store, self.scope, self.max_entries = store, scope, max_entries

    def get(self, key: str) -> _Failures | None:
        found = failures_table.get(self.store, self.scope, key)
        return _Failures(*found) if found else None

    def add(self, key: str, now: float, forget_s: float) -> None:
        failures_table.add(self.store, self.scope, key, now, forget_s, self.max_entries)

    def clear(self, key: str) -> None:
        failures_table.clear(self.store, self.scope, key)


class SigninThrottle:
    def __init__(self, *, free_failures: int = 5, base_s: float = 1.0, cap_s: float = 900.0,
                 forget_s: float = 86_400.0, max_entries: int = 10_000, clock: Callable[[], float] | None = None,
                 shared=None):
        self.free_failures = free_failures  # failures before any waiting
        self.base_s = base_s  # the first wait; doubles with each further failure
        self.cap_s = cap_s  # the longest wait
        self.forget_s = forget_s  # a quiet period after which old failures no longer count
        # replicas compare times across processes: the wall clock; one process: the monotonic one
        self.clock = clock or (time.time if shared is not None else time.monotonic)
        # Separate tables: flooding addresses cannot push an account's counter out.
        if shared is not None:  # a Store the replicas share
            self._accounts: _Counters | _SharedCounters = _SharedCounters(shared, "account", max_entries)
            self._addresses: _Counters | _SharedCounters = _SharedCounters(shared, "address", max_entries)
        else:
            self._accounts, self._addresses = _Counters(max_entries), _Counters(max_entries)
        self._lock = threading.Lock()

    def _keys(self, account: str | None, address: str | None) -> list[tuple[_Counters, str]]:
        keys = []
        if address:
            keys.append((self._addresses, address_key(address)))
        if account and not is_loopback(address):
            keys.append((self._accounts, account))
        return keys

    def _wait(self, entry: _Failures | None, now: float) -> float:
        if entry is None or entry.count < self.free_failures or now - entry.last > self.forget_s:
            return 0.0
        delay = min(self.cap_s, self.base_s * 2 ** min(entry.count - self.free_failures, 64))
        return entry.last + delay - now

    def check(self, account: str | None, address: str | None) -> None:
        """Raise SigninThrottled while the account (seen from a non-loopback address) or the
        address must wait. `account` is None for names that are not accounts."""
        with self._lock:
            now = self.clock()
            wait = max((self._wait(table.get(key), now) for table, key in self._keys(account, address)), default=0)
        if wait > 0:
            raise SigninThrottled(max(1, math.ceil(wait)))

    def failed(self, account: str | None, address: str | None) -> None:
        with self._lock:
            now = self.clock()
            for table, key in self._keys(account, address):
                table.add(key, now, self.forget_s)

    def succeeded(self, account: str | None, address: str | None) -> None:
        with self._lock:
            if address:
                self._addresses.clear(address_key(address))
            if account:
                self._accounts.clear(account)

    def size(self) -> int:
        """Entries held, for tests of the memory bound."""
        if isinstance(self._accounts, _SharedCounters):
            return failures_table.count(self._accounts.store)
        return len(self._accounts) + len(self._addresses)
