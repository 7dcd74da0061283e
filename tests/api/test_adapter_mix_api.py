"""POST /adapters/mix over HTTP: peft's combination types with their knobs, the held-out perplexity
in the answer, and clear 422s that leave nothing behind."""

from __future__ import annotations

from engines.starter import STARTER_TEXT
from tests.engines.test_text_train import pattern_lines, random_adapter


def import_random(client, tmp_path, name: str, rank: int, seed: int) -> str:
    folder = random_adapter(client.studio.data_dir, tmp_path / name, rank=rank, seed=seed)
    files = [("file", (p.name, p.read_bytes())) for p in sorted(folder.iterdir())]
    r = client.post("/api/v1/adapters/import", files=files, data={"base_model": STARTER_TEXT, "name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def on_disk(client) -> tuple[list, list]:
    adapters = sorted(p.name for p in (client.studio.data_dir / "models" / "adapters").iterdir())
    return [a["id"] for a in client.get("/api/v1/adapters").json()["adapters"]], adapters


def test_mix_with_a_combination_type_answers_perplexity_and_refuses_bad_options(api_client, tmp_path):
    client = api_client
    client.studio.models.registry.location(client.studio.models.resolve(STARTER_TEXT, "text"))
    a, b = (import_random(client, tmp_path, n, 4, s) for n, s in (("a", 1), ("b", 2)))
    wide = import_random(client, tmp_path, "wide", 8, 3)
    text = "\n\n".join(pattern_lines(60)).encode()
    ds = client.post("/api/v1/datasets", data={"kind": "text", "name": "foxes"}, files={"file": ("f.txt", text)})
    assert ds.status_code in (200, 201), ds.text

    r = client.post("/api/v1/adapters/mix", json={"adapters": [a, b], "weights": [0.5, 0.5], "combination_type":
                    "ties", "density": 0.6, "eval_dataset_id": ds.json()["id"]})  # fmt: skip
    assert r.status_code == 201, r.text
    mixed = r.json()
    assert mixed["meta"]["combination_type"] == "ties" and mixed["meta"]["majority_sign_method"] == "total"
    scores = mixed["perplexity"]
    assert set(scores) >= {"merged", "parents", "dataset_id"} and set(scores["parents"]) == {a, b}
    assert client.get(f"/api/v1/adapters/{mixed['id']}").json()["meta"]["perplexity"] == scores

    before = on_disk(client)
    for body, code in [
        ({"adapters": [a, b], "combination_type": "average"}, "unknown_combination_type"),
        ({"adapters": [a, wide], "combination_type": "linear"}, "rank_mismatch"),
        ({"adapters": [a, b], "combination_type": "dare_ties", "density": 1.5}, "invalid_field"),
        ({"adapters": [a, b], "combination_type": "svd", "majority_sign_method": "total"}, "invalid_field"),
        ({"adapters": [a, b], "weights": [1.0]}, "weights_mismatch"),
        ({"adapters": [{"id": a, "weight": 1}, b], "weights": [1, 1]}, "invalid_field"),
    ]:
        r = client.post("/api/v1/adapters/mix", json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
        assert r.json()["error"]["message"]
    r = client.post("/api/v1/adapters/mix", json={"adapters": [a, b], "eval_dataset_id": "ds_0123456789abcdef"})
    assert r.status_code == 404
    assert on_disk(client) == before
    assert not [p for p in (client.studio.data_dir / "tmp").iterdir() if p.name.startswith("upload-")]
