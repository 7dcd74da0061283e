import threading
import time

import pytest

from studio.config import RequestLimits
from studio.services.auth import User
from studio.services.errors import Busy, Invalid
from studio.services.limits import RequestGate, TooManyRequests, enforce

ALICE = User("alice", is_admin=False)
ADMIN = User("root", is_admin=True)


def test_size_limits_apply_to_non_admins_only():
    limits = RequestLimits(max_new_tokens=100)
    with pytest.raises(Invalid, match="at most 100 new tokens"):
        enforce(limits, ALICE, "text", {"max_new_tokens": 101})
    enforce(limits, ALICE, "text", {"max_new_tokens": 100})
    enforce(limits, ADMIN, "text", {"max_new_tokens": 10_000})
    with pytest.raises(Invalid, match="pixels"):
        enforce(limits, ALICE, "image", {"width": 1024, "height": 1024})


def test_gate_limits_each_user_and_the_queue():
    gate = RequestGate(max_running=1, max_per_user=1, max_queue=1)
    release = threading.Event()
    entered = threading.Event()

    def hold(user):
        with gate.enter(user):
            entered.set()
            release.wait(5)

    first = threading.Thread(target=hold, args=(ALICE,))
    first.start()
    entered.wait(2)
    with pytest.raises(TooManyRequests, match="already have 1"), gate.enter(ALICE):
        pass
    waiter = threading.Thread(target=hold, args=(User("bob", False),))
    waiter.start()
    time.sleep(0.2)  # bob waits in the queue: it is full now
    with pytest.raises(Busy, match="busy"), gate.enter(User("carol", False)):
        pass
    release.set()
    first.join(5)
    waiter.join(5)
    with gate.enter(ALICE):  # everything drained: alice may come back
        pass


def test_api_refuses_oversized_requests_from_guests(tmp_path):
    from fastapi.testclient import TestClient

    from studio.app import build_app
    from studio.config import StudioConfig

    config = StudioConfig(data_dir=tmp_path / "d", offline=True, accounts=[("admin", "pw-admin")],
                          guest_access="generate", limits=RequestLimits(max_new_tokens=8))
    with TestClient(build_app(config, ui=False)) as c:
        r = c.post("/api/v1/text/generate", json={"prompt": "hi", "max_new_tokens": 9})
        assert r.status_code == 422 and "at most 8" in r.json()["error"]["message"]
        assert c.post("/api/v1/text/generate", json={"prompt": "hi", "max_new_tokens": 8}).status_code == 200
        r = c.post("/api/v1/text/generate", json={"prompt": "hi", "max_new_tokens": 9}, auth=("admin", "pw-admin"))
        assert r.status_code == 200
