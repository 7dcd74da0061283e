"""Who runs a job, when several studio replicas share one database.

Each JobRunner is a replica with an id `host:pid:nonce`. It claims queued jobs (a row lock, so
exactly one replica takes each), renews a lease on what it runs, and watches the rows of its jobs
for a cancel asked for on another replica. A job whose owner is gone is settled by whichever
replica notices first:

    owner on this host, its process gone (or its runner shut down)   → at once
    owner on another host, lease not renewed in time                  → once the lease lapses

Leases are compared as UTC timestamps, so replicas on different hosts need synchronised clocks
(NTP), as any lease does.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

from studio.store import Store
from studio.store import jobs as table

_LIVE: set[str] = set()  # replicas of this process whose runner has not shut down
_HOST = socket.gethostname()


def new_replica_id() -> str:
    replica = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    _LIVE.add(replica)
    return replica


def retire(replica: str) -> None:
    """This runner stopped: jobs it leaves running are anyone's to settle."""
    _LIVE.discard(replica)


def on_this_host(owner: str | None) -> bool:
    return owner is None or owner.split(":", 1)[0] == _HOST


def owner_gone(owner: str | None) -> bool | None:
    """True: the owner is known to be gone (no owner at all, a process on this host that has ended,
    or a runner of this process that shut down); False: it runs here; None: it is on another host
    (only its lease tells)."""
    if owner is None:
        return True
    host, _, rest = owner.partition(":")
    if host != _HOST:
        return None
    pid_text, _, _nonce = rest.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return True
    if pid == os.getpid():
        return owner not in _LIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def long_lapsed(lease: str | None, seconds: float) -> bool:
    """Whether a lease ran out more than `seconds` ago (a pid alive here may be a reused one, or
    another namespace's)."""
    if lease is None:
        return False
    return lease < lease_until(-seconds)


def lease_until(seconds: float) -> str:
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Settled:
    """Wait for a job that another replica runs to reach a final status (its cancel went by the row)."""

    def __init__(self, store: Store, job_id: str) -> None:
        self.store, self.job_id = store, job_id

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            row = table.get(self.store, self.job_id)
            if row is None or row["status"] != "running":
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
