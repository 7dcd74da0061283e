"""Sessions live on the server: signing out, or removing an account, ends them for good."""

import base64
import sqlite3

import pytest
from fastapi.testclient import TestClient

from studio.app import build_app
from studio.config import StudioConfig
from studio.services.signin_throttle import SigninThrottle

ACCOUNTS = [("admin", "secret-pass"), ("bob", "bob-pass")]


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    config = StudioConfig(data_dir=tmp_path_factory.mktemp("sessions") / "data", offline=True, accounts=ACCOUNTS,
                          forwarded_allow_ips=["10.0.0.1"])
    app = build_app(config)
    with TestClient(app):  # runs the lifespan once for the module
        yield app


@pytest.fixture
def c(app):
    app.state.studio.auth.throttle = SigninThrottle()  # each test starts with clean counters
    return TestClient(app)


def sign_in(c, user="admin", password="secret-pass") -> str:
    r = c.post("/signin", data={"username": user, "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.cookies["studio_session"]


def me(app, cookie: str | None):
    fresh = TestClient(app)  # a browser holding only this cookie
    if cookie is not None:
        fresh.cookies.set("studio_session", cookie)
    return fresh.get("/api/v1/me")


def test_signed_in_cookie_says_who_and_sign_out_ends_it_everywhere(app, c):
    cookie = sign_in(c)
    assert me(app, cookie).json() == {"user": "admin", "role": "admin"}
    assert TestClient(app, cookies={"studio_session": cookie}).get("/", follow_redirects=False).status_code == 200
    r = c.post("/signout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("signin")
    # a copy of the cookie taken before signing out is worthless now: API and page both refuse it
    r = me(app, cookie)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    page = TestClient(app, cookies={"studio_session": cookie}).get("/", follow_redirects=False)
    assert page.status_code == 303 and "signin" in page.headers["location"]
    join = TestClient(app, cookies={"studio_session": cookie}).post(
        "/gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": "x1"})
    assert join.status_code == 401


def test_get_signout_still_works(app, c):
    cookie = sign_in(c)
    assert c.get("/signout", follow_redirects=False).status_code == 303
    assert me(app, cookie).status_code == 401


def test_the_cookie_is_an_opaque_token_and_only_its_hash_is_stored(app, c):
    cookie = sign_in(c, "bob", "bob-pass")
    assert "bob" not in cookie and len(cookie) >= 40
    db = sqlite3.connect(app.state.studio.data_dir / "studio.db")
    try:
        stored = " ".join(str(v) for row in db.execute("SELECT * FROM sessions") for v in row)
    finally:
        db.close()
    assert cookie not in stored and "bob" in stored
    assert me(app, cookie).json() == {"user": "bob", "role": "user"}


def test_each_sign_in_gets_a_fresh_token_and_drops_the_old_one(app, c):
    first = sign_in(c)
    second = sign_in(c)  # the same browser signs in again
    assert first != second
    assert me(app, first).status_code == 401
    assert me(app, second).json()["user"] == "admin"
    other_browser = sign_in(TestClient(app))
    assert me(app, other_browser).status_code == 200 and me(app, second).status_code == 200


def test_cookie_flags(app, c):
    r = c.post("/signin", data={"username": "admin", "password": "secret-pass"}, follow_redirects=False)
    flags = r.headers["set-cookie"].lower()
    assert "httponly" in flags and "samesite=lax" in flags and "secure" not in flags
    https = TestClient(app, base_url="https://testserver")
    r = https.post("/signin", data={"username": "admin", "password": "secret-pass"}, follow_redirects=False)
    assert "secure" in r.headers["set-cookie"].lower()
    # X-Forwarded-Proto counts only from a configured proxy
    forwarded = {"X-Forwarded-Proto": "https"}
    r = c.post("/signin", data={"username": "admin", "password": "secret-pass"}, headers=forwarded,
               follow_redirects=False)
    assert "secure" not in r.headers["set-cookie"].lower()
    proxy = TestClient(app, client=("10.0.0.1", 4000))
    r = proxy.post("/signin", data={"username": "admin", "password": "secret-pass"}, headers=forwarded,
                   follow_redirects=False)
    assert "secure" in r.headers["set-cookie"].lower()


def test_me_for_every_kind_of_credential(app, c):
    assert c.get("/api/v1/me", headers=basic("admin", "secret-pass")).json() == {"user": "admin", "role": "admin"}
    assert c.get("/api/v1/me", headers=basic("bob", "bob-pass")).json() == {"user": "bob", "role": "user"}
    token = c.post("/api/v1/tokens", json={"label": "t"}, headers=basic("admin", "secret-pass")).json()["token"]
    assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["user"] == "admin"
    r = c.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert me(app, "not-a-session").status_code == 401


def test_me_for_visitors_and_the_local_owner(tmp_path):
    guests = StudioConfig(data_dir=tmp_path / "g", offline=True, accounts=ACCOUNTS, guest_access="generate")
    with TestClient(build_app(guests, ui=False)) as c:
        assert c.get("/api/v1/me").json() == {"user": "guest", "role": "guest"}
    with TestClient(build_app(StudioConfig(data_dir=tmp_path / "l", offline=True), ui=False)) as c:
        assert c.get("/api/v1/me").json() == {"user": "local", "role": "admin"}


def test_sessions_of_a_removed_account_stop_working(tmp_path):
    data = tmp_path / "data"
    with TestClient(build_app(StudioConfig(data_dir=data, offline=True, accounts=ACCOUNTS), ui=False)) as c:
        studio = c.app.state.studio
        bob = studio.auth.start_session(studio.auth.user_named("bob"))
        admin = studio.auth.start_session(studio.auth.user_named("admin"))
        c.cookies.set("studio_session", bob)
        assert c.get("/api/v1/me").json()["user"] == "bob"
    # restarted without bob's account
    with TestClient(build_app(StudioConfig(data_dir=data, offline=True, accounts=ACCOUNTS[:1]), ui=False)) as c:
        c.cookies.set("studio_session", bob)
        assert c.get("/api/v1/me").status_code == 401
        c.cookies.set("studio_session", admin)
        assert c.get("/api/v1/me").json()["user"] == "admin"
        db = sqlite3.connect(data / "studio.db")
        try:
            assert [r[0] for r in db.execute("SELECT user FROM sessions")] == ["admin"]
        finally:
            db.close()
