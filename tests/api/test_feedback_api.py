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


def test_kto_and_dpo_exports_load_with_datasets(api_client, tmp_path):
    """The exports are what TRL's KTO and DPO trainers read: load_dataset('json') with their columns."""
    import shutil

    from datasets import load_dataset

    for seed, rating in ((1, "up"), (2, "down"), (3, "up")):
        api_client.post("/api/v1/feedback", json={"output_id": make_output(api_client, seed), "rating": rating})
    models = api_client.studio.data_dir / "models"
    shutil.copytree(models / "starter" / "gpt2-tiny", models / "local" / "text" / "twin")
    for seed in range(3):
        cmp = api_client.post("/api/v1/compare", json={"prompt": "Hi", "a": {"model": "starter/gpt2-tiny"},
                                                       "b": {"model": "local/text/twin"}, "seed": seed}).json()
        api_client.post(f"/api/v1/compare/{cmp['id']}/vote", json={"winner": "a"})
    for fmt, columns, rows in (("kto", {"prompt", "completion", "label"}, 3),
                               ("dpo", {"prompt", "chosen", "rejected"}, 3)):
        path = tmp_path / f"{fmt}.jsonl"
        path.write_bytes(api_client.get(f"/api/v1/feedback/export?format={fmt}").content)
        ds = load_dataset("json", data_files=str(path), split="train")
        assert set(ds.column_names) == columns and len(ds) == rows
    assert load_dataset("json", data_files=str(tmp_path / "kto.jsonl"), split="train").features["label"].dtype == "bool"
