"""Guessing passwords gets slow: 429 with Retry-After on the sign-in page, HTTP Basic and bearer tokens."""

import base64

import pytest
from fastapi.testclient import TestClient

from studio.app import build_app
from studio.config import StudioConfig
from studio.services.signin_throttle import SigninThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    config = StudioConfig(data_dir=tmp_path_factory.mktemp("throttle") / "data", offline=True,
                          accounts=[("admin", "secret-pass")])
    app = build_app(config)
    with TestClient(app):
        yield app


@pytest.fixture
def clock(app):
    clock = Clock()
    app.state.studio.auth.throttle = SigninThrottle(clock=clock)
    return clock


def test_twenty_wrong_passwords_on_the_sign_in_page_get_429(app, clock):
    c = TestClient(app)
    codes = []
    for n in range(20):
        r = c.post("/signin", data={"username": "admin", "password": f"guess-{n}"}, follow_redirects=False)
        codes.append(r.status_code)
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert int(r.headers["retry-after"]) >= 1
    assert "Too many failed sign-ins" in r.text and "<form" in r.text
    # even the right password waits until the back-off has passed ...
    r = c.post("/signin", data={"username": "admin", "password": "secret-pass"}, follow_redirects=False)
    assert r.status_code == 429
    clock.now += int(r.headers["retry-after"])
    r = c.post("/signin", data={"username": "admin", "password": "secret-pass"}, follow_redirects=False)
    assert r.status_code == 303  # ... and then works, and clears the counters
    r = c.post("/signin", data={"username": "admin", "password": "one-typo"}, follow_redirects=False)
    assert r.status_code == 401


def test_twenty_wrong_passwords_over_basic_get_429(app, clock):
    c = TestClient(app)
    codes = [c.get("/api/v1/me", headers=basic("admin", f"guess-{n}")).status_code for n in range(20)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    r = c.get("/api/v1/me", headers=basic("admin", "secret-pass"))
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"
    assert int(r.headers["retry-after"]) >= 1 and "Try again in" in r.json()["error"]["message"]
    # the account is locked from other addresses too, but never from the machine itself
    elsewhere = TestClient(app, client=("203.0.113.5", 4000))
    assert elsewhere.get("/api/v1/me", headers=basic("admin", "secret-pass")).status_code == 429
    local = TestClient(app, client=("127.0.0.1", 4000))
    assert local.get("/api/v1/me", headers=basic("admin", "secret-pass")).json()["user"] == "admin"
    assert local.post("/signin", data={"username": "admin", "password": "secret-pass"},
                      follow_redirects=False).status_code == 303


def test_unknown_bearer_tokens_are_throttled_by_address(app, clock):
    c = TestClient(app)
    token = c.post("/api/v1/tokens", json={}, headers=basic("admin", "secret-pass")).json()["token"]
    codes = [c.get("/api/v1/me", headers={"Authorization": f"Bearer aigc_guess{n}"}).status_code for n in range(8)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    # a real token still works: only guesses are slowed down
    assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    other = TestClient(app, client=("203.0.113.9", 4000))
    assert other.get("/api/v1/me", headers={"Authorization": "Bearer aigc_guess"}).status_code == 401
