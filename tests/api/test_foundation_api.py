"""Health, models, the JSON error format everywhere, and accounts on the API."""

import base64


def test_health(api_client):
    r = api_client.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["offline"] is True and body["device"] == "cpu"
    assert isinstance(body["version"], str)


def test_models_lists_the_three_starter_models_offline(api_client):
    body = api_client.get("/api/v1/models").json()
    assert set(body) >= {"text", "image", "gan", "speech", "text_adapters", "image_loras"}
    ids = {kind: [m["id"] for m in body[kind]] for kind in ("text", "image", "speech")}
    # the test fixtures first (conftest), then the shipped trained starter with its card
    assert ids == {"text": ["starter/gpt2-tiny", "starter/gpt2-stories"], "image": ["starter/sd-tiny", "starter/sd-shapes"],
                   "speech": ["starter/vits-tiny", "starter/speecht5-espeak", "starter/espeak-ng"]}
    for m in body["text"]:
        assert m["source"] == "starter" and m["loaded"] is False
    assert "card" not in body["text"][0] and body["text"][1]["card"]["measures"]["english_word_share"] >= 0.9
    assert body["image"][1]["source"] == "starter" and body["image"][1]["card"]["measures"]["background"] >= 0.5


def test_unknown_route_is_a_json_404(api_client):
    r = api_client.get("/api/v1/no/such/route")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "not_found" and "/api/v1/docs" in err["message"]


def test_wrong_method_is_a_json_405(api_client):
    r = api_client.delete("/api/v1/health")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_bad_json_is_a_json_400(api_client):
    r = api_client.post("/api/v1/tokens", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_json"


def test_invalid_field_is_a_json_422(api_client):
    r = api_client.post("/api/v1/tokens", json={"label": "x", "surprise": 1})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_field" and "surprise" in err["message"]


def test_openapi_and_docs_are_served(api_client):
    spec = api_client.get("/api/v1/openapi.json").json()
    assert "/health" in spec["paths"] and "/models" in spec["paths"]
    assert api_client.get("/api/v1/docs").status_code == 200


def test_security_headers_on_api_responses(api_client):
    r = api_client.get("/api/v1/health")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_ui_is_served_at_root(client):
    r = client.get("/")
    assert r.status_code == 200 and "<html" in r.text.lower()


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def make_client(tmp_path, **kw):
    from fastapi.testclient import TestClient

    from studio.app import build_app
    from studio.config import StudioConfig

    config = StudioConfig(data_dir=tmp_path / "data", offline=True, **kw)
    return TestClient(build_app(config, ui=False))


def test_accounts_protect_every_route_but_health(tmp_path):
    with make_client(tmp_path, accounts=[("admin", "secret-pass"), ("bob", "bob-pass")]) as c:
        assert c.get("/api/v1/health").status_code == 200
        r = c.get("/api/v1/models")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert c.get("/api/v1/models", headers=basic("admin", "wrong")).status_code == 401
        assert c.get("/api/v1/models", headers=basic("admin", "secret-pass")).status_code == 200
        # a non-admin account may look but not administer
        assert c.get("/api/v1/models", headers=basic("bob", "bob-pass")).status_code == 200
        r = c.post("/api/v1/tokens", json={}, headers=basic("bob", "bob-pass"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_api_token_works_and_can_be_revoked(tmp_path):
    with make_client(tmp_path, accounts=[("admin", "secret-pass")]) as c:
        r = c.post("/api/v1/tokens", json={"label": "script"}, headers=basic("admin", "secret-pass"))
        assert r.status_code == 201
        token, token_id = r.json()["token"], r.json()["id"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert c.get("/api/v1/models", headers=bearer).status_code == 200
        listed = c.get("/api/v1/tokens", headers=bearer).json()["tokens"]
        assert [t["id"] for t in listed] == [token_id] and "token" not in listed[0]
        assert c.delete(f"/api/v1/tokens/{token_id}", headers=bearer).status_code == 200
        assert c.get("/api/v1/models", headers=bearer).status_code == 401


def test_guests_may_look_but_not_administer(tmp_path):
    with make_client(tmp_path, accounts=[("admin", "secret-pass")], guest_access="generate") as c:
        assert c.get("/api/v1/models").status_code == 200
        assert c.post("/api/v1/tokens", json={}).status_code == 403
        # wrong credentials are refused even though guests are allowed
        assert c.get("/api/v1/models", headers=basic("admin", "nope")).status_code == 401


def test_every_route_but_health_needs_credentials(tmp_path):
    """Walk the OpenAPI document: without credentials each operation answers 401 (health: 200)."""
    with make_client(tmp_path, accounts=[("admin", "secret-pass")]) as c:
        spec = c.get("/api/v1/openapi.json").json()
        checked = 0
        for path, ops in spec["paths"].items():
            url = "/api/v1" + path.replace("{", "").replace("}", "")  # any id: auth comes first
            for method in ops:
                r = c.request(method.upper(), url)
                expected = 200 if path == "/health" else 401
                assert r.status_code == expected, (method, path, r.status_code, r.text)
                checked += 1
        assert checked >= 30


def test_visitors_get_403_on_uploads_jobs_and_deletes(tmp_path):
    with make_client(tmp_path, accounts=[("admin", "secret-pass")], guest_access="generate") as c:
        refused = [
            c.post("/api/v1/datasets", files={"file": ("a.txt", b"hello world")}, data={"kind": "text", "name": "x"}),
            c.post("/api/v1/jobs", json={"kind": "selftest"}),
            c.post("/api/v1/jobs/job_0123456789abcdef/cancel"),
            c.post("/api/v1/jobs/job_0123456789abcdef/resume"),
            c.delete("/api/v1/datasets/ds_0123456789abcdef"),
            c.delete("/api/v1/adapters/ad_0123456789abcdef"),
            c.post("/api/v1/adapters/mix", json={"adapters": [], "name": "x"}),
            c.post("/api/v1/datasets/demo", json={}),
            c.delete("/api/v1/tokens/tok_0123456789abcdef"),
            c.put("/api/v1/settings/precision", json={"text": "fp32"}),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused), [r.text for r in refused]
        assert all(r.json()["error"]["code"] == "forbidden" for r in refused)
        # ... while the admin is allowed (and gets past the role check to the real answer)
        r = c.post("/api/v1/jobs", json={"kind": "selftest", "params": {"max_steps": 1}}, auth=("admin", "secret-pass"))
        assert r.status_code == 201
