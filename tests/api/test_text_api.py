"""Text generation through the API on the starter GPT-2."""


def gen(client, **body):
    r = client.post("/api/v1/text/generate", json={"prompt": "Once upon a time", "max_new_tokens": 12, **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_seeded_calls_are_identical_and_unseeded_vary(api_client):
    a = gen(api_client, seed=42)
    b = gen(api_client, seed=42)
    assert a["outputs"][0]["text"] == b["outputs"][0]["text"]
    assert a["outputs"][0]["seed"] == 42 and a["model"] == "starter/gpt2-tiny"
    unseeded = {gen(api_client)["outputs"][0]["text"] for _ in range(3)}
    assert len(unseeded) > 1


def test_four_variations_are_distinct_and_stored(api_client):
    body = gen(api_client, num_outputs=4, seed=7)
    texts = [o["text"] for o in body["outputs"]]
    assert len(texts) == 4 and len(set(texts)) == 4
    for o in body["outputs"]:
        stored = api_client.get(f"/api/v1/outputs/{o['id']}").json()
        assert stored["kind"] == "text" and stored["text"] == o["text"] and stored["seed"] == 7
        assert stored["rating"] is None
        assert api_client.get(f"/api/v1/outputs/{o['id']}/file").text == o["text"]


def test_over_long_prompt_works_with_a_warning(api_client):
    r = api_client.post("/api/v1/text/generate", json={"prompt": "the cat sat on the mat. " * 300, "max_new_tokens": 8})
    assert r.status_code == 200
    assert any("only its last" in w for w in r.json()["warnings"])


def test_stop_sequence_cuts_the_text(api_client):
    plain = gen(api_client, seed=5, max_new_tokens=30)["outputs"][0]["text"]
    cut_at = plain[5:7]
    stopped = gen(api_client, seed=5, max_new_tokens=30, stop=[cut_at])["outputs"][0]["text"]
    assert cut_at not in stopped and plain.startswith(stopped)


def test_bad_input_is_a_clear_4xx(api_client):
    r = api_client.post("/api/v1/text/generate", json={"prompt": "x", "max_new_tokens": 0})
    assert r.status_code == 422 and "max_new_tokens" in r.json()["error"]["message"]
    r = api_client.post("/api/v1/text/generate", json={"prompt": "x", "model": "gpt-99"})
    assert r.status_code == 404 and "starter/gpt2-tiny" in r.json()["error"]["message"]
    r = api_client.post("/api/v1/text/generate", json={"prompt": "x", "adapter": "ad_0000000000000000"})
    assert r.status_code == 404
