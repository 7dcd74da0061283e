"""No cross-site writes: a page on another site cannot drive the studio through a visitor's browser."""

import base64

import pytest
from fastapi.testclient import TestClient

from studio.app import build_app
from studio.config import StudioConfig

EVIL = {"Origin": "http://evil.example"}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"admin:secret-pass").decode()}


def studio(tmp_path, **kw) -> TestClient:
    return TestClient(build_app(StudioConfig(data_dir=tmp_path / "data", offline=True, **kw), ui=False))


def writes(c: TestClient, headers: dict) -> list:
    return [
        c.post("/api/v1/datasets/demo", json={"n": 16}, headers=headers),
        c.post("/api/v1/jobs/job_0123456789abcdef/cancel", headers=headers),
        c.post("/api/v1/feedback", json={"output_id": "out_0123456789abcdef", "rating": "up"}, headers=headers),
        c.delete("/api/v1/datasets/ds_0123456789abcdef", headers=headers),
        c.put("/api/v1/settings/precision", json={"text": "fp32"}, headers=headers),
    ]


def assert_refused(responses):
    assert [r.status_code for r in responses] == [403] * len(responses), [r.text for r in responses]
    for r in responses:
        error = r.json()["error"]
        assert error["code"] == "cross_origin" and "evil.example" in error["message"]


def assert_passed(responses):
    # past the origin check: each route answers for itself (created, unknown id, ...)
    assert all(r.status_code != 403 for r in responses), [r.text for r in responses]
    assert responses[0].status_code == 201


def test_without_accounts_cross_origin_writes_are_refused(tmp_path):
    with studio(tmp_path) as c:
        assert_refused(writes(c, EVIL))
        assert_refused(writes(c, {"Referer": "http://evil.example/attack.html"}))
        r = c.post("/api/v1/datasets/demo", json={"n": 16}, headers={"Origin": "null"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
        assert c.get("/api/v1/datasets").json()["datasets"] == []  # nothing was created
        assert_passed(writes(c, {}))  # a script without Origin
        assert_passed(writes(c, {"Origin": "http://testserver"}))  # the studio's own page
        assert c.get("/api/v1/models", headers=EVIL).status_code == 200  # reads are not writes


def test_with_accounts_credentials_do_not_make_a_cross_origin_write_pass(tmp_path):
    with studio(tmp_path, accounts=[("admin", "secret-pass")]) as c:
        assert_refused(writes(c, {**ADMIN, **EVIL}))
        assert_passed(writes(c, ADMIN))
        assert_passed(writes(c, {**ADMIN, "Origin": "http://testserver"}))


def test_allowed_origins_may_write_and_read_with_cors(tmp_path):
    with studio(tmp_path, allowed_origins=["http://ok.example"]) as c:
        assert_passed(writes(c, {"Origin": "http://ok.example"}))
        assert_refused(writes(c, EVIL))
        r = c.options("/api/v1/feedback", headers={"Origin": "http://ok.example", "Access-Control-Request-Method": "POST",
                                                    "Access-Control-Request-Headers": "content-type"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://ok.example"
        r = c.get("/api/v1/models", headers=EVIL)
        assert "access-control-allow-origin" not in r.headers


def test_own_origin_behind_a_trusted_proxy(tmp_path):
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "studio.example"}
    with studio(tmp_path, forwarded_allow_ips=["10.0.0.1"]) as c:
        via_proxy = TestClient(c.app, client=("10.0.0.1", 4000))
        r = via_proxy.post("/api/v1/datasets/demo", json={"n": 16}, headers={**proxied, "Origin": "https://studio.example"})
        assert r.status_code == 201
        # the same headers from anyone else are not believed
        r = c.post("/api/v1/datasets/demo", json={"n": 16}, headers={**proxied, "Origin": "https://studio.example"})
        assert r.status_code == 403


@pytest.fixture(scope="module")
def ui_client(tmp_path_factory):
    """The whole app with the Gradio page, no accounts: every visitor is the local owner."""
    config = StudioConfig(data_dir=tmp_path_factory.mktemp("ui") / "data", offline=True)
    with TestClient(build_app(config)) as c:
        yield c


def test_gradio_writes_from_another_origin_are_refused(ui_client):
    join = {"data": ["hi"], "fn_index": 0, "session_hash": "abc123"}
    for path, kw in [("/gradio_api/queue/join", {"json": join}),
                     ("/gradio_api/upload", {"files": {"files": ("a.txt", b"hello")}}),
                     ("/gradio_api/run/predict", {"json": {"data": []}})]:
        r = ui_client.post(path, headers=EVIL, **kw)
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin", path
    r = ui_client.post("/gradio_api/upload", files={"files": ("a.txt", b"hello")}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200
    assert ui_client.get("/", headers=EVIL).status_code == 200


def test_signin_and_signout_forms_refuse_other_origins(tmp_path):
    config = StudioConfig(data_dir=tmp_path / "data", offline=True, accounts=[("admin", "secret-pass")])
    with TestClient(build_app(config)) as c:
        r = c.post("/signin", data={"username": "admin", "password": "secret-pass"}, headers=EVIL,
                   follow_redirects=False)
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
        assert "studio_session" not in r.cookies
        r = c.post("/signin", data={"username": "admin", "password": "secret-pass"},
                   headers={"Origin": "http://testserver"}, follow_redirects=False)
        assert r.status_code == 303
        r = c.post("/signout", headers=EVIL, follow_redirects=False)
        assert r.status_code == 403
        assert c.get("/", follow_redirects=False).status_code == 200  # still signed in
