"""Ratings on outputs: stored per user, replaced on re-rate, removable, counted and exported."""

import json


def make_output(client, seed=1):
    r = client.post("/api/v1/text/generate", json={"prompt": "Hello", "max_new_tokens": 4, "seed": seed})
    return r.json()["outputs"][0]["id"]


def test_rate_rerate_and_unrate(api_client):
    oid = make_output(api_client)
    r = api_client.post("/api/v1/feedback", json={"output_id": oid, "rating": "up", "comment": "nice"})
    assert r.status_code == 200 and r.json()["rating"] == "up"
    assert api_client.get(f"/api/v1/outputs/{oid}").json()["rating"] == "up"
    api_client.post("/api/v1/feedback", json={"output_id": oid, "rating": "down"})
    stats = api_client.get("/api/v1/feedback/stats").json()
    assert (stats["total"], stats["up"], stats["down"]) == (1, 0, 1)
    assert stats["by_model"][0]["model"] == "starter/gpt2-tiny" and stats["by_model"][0]["approval"] == 0
    api_client.post("/api/v1/feedback", json={"output_id": oid, "rating": None})
    assert api_client.get(f"/api/v1/outputs/{oid}").json()["rating"] is None
    assert api_client.get("/api/v1/feedback/stats").json()["total"] == 0


def test_unknown_output_and_bad_rating(api_client):
    r = api_client.post("/api/v1/feedback", json={"output_id": "out_0123456789abcdef", "rating": "up"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = api_client.post("/api/v1/feedback", json={"output_id": "../../etc/passwd", "rating": "up"})
    assert r.status_code == 404
    oid = make_output(api_client)
    r = api_client.post("/api/v1/feedback", json={"output_id": oid, "rating": "meh"})
    assert r.status_code == 422
    assert api_client.get("/api/v1/feedback/stats").json()["total"] == 0


def test_exports(api_client):
    up, down = make_output(api_client, 1), make_output(api_client, 2)
    api_client.post("/api/v1/feedback", json={"output_id": up, "rating": "up"})
    api_client.post("/api/v1/feedback", json={"output_id": down, "rating": "down"})
    kto = [json.loads(line) for line in api_client.get("/api/v1/feedback/export?format=kto").text.splitlines()]
    assert sorted(r["label"] for r in kto) == [False, True]
    assert set(kto[0]) == {"prompt", "completion", "label"}
    full = api_client.get("/api/v1/feedback/export").text.splitlines()
    assert len(full) == 2 and json.loads(full[0])["model"] == "starter/gpt2-tiny"
    assert api_client.get("/api/v1/feedback/export?format=xml").status_code == 422
