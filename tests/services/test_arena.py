import random
import shutil

from studio.services.arena import bradley_terry, leaderboard_from_matches


def simulate(strengths: dict[str, float], n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """Votes from a known Bradley–Terry world, with some ties and both-bad votes."""
    rng = random.Random(seed)
    names = list(strengths)
    matches = []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        pa = strengths[a] / (strengths[a] + strengths[b])
        r = rng.random()
        if r < 0.1:
            matches.append((a, b, "tie"))
        elif r < 0.15:
            matches.append((a, b, "both_bad"))
        else:
            matches.append((a, b, "a" if rng.random() < pa else "b"))
    return matches


def test_leaderboard_recovers_a_known_ranking():
    truth = {"m+v3": 4.0, "m+v2": 2.0, "m": 1.0}
    rows = leaderboard_from_matches(simulate(truth, 400), bootstrap=100)
    assert [r["version"] for r in rows] == ["m+v3", "m+v2", "m"]
    top = rows[0]
    assert top["ci_low"] <= top["score"] <= top["ci_high"]
    assert top["model"] == "m" and top["adapter"] == "v3"
    assert sum(r["wins"] for r in rows) == sum(r["losses"] for r in rows)
    assert rows[0]["ci_low"] > rows[2]["ci_high"]  # the best and the worst are clearly apart


def test_ties_count_half():
    scores = bradley_terry([("a", "b", 0.5)] * 10)
    assert abs(scores["a"] - scores["b"]) < 1e-9
    scores = bradley_terry([("a", "b", 1.0)] * 3 + [("a", "b", 0.5)] * 2)
    assert scores["a"] > scores["b"]


def test_compare_and_vote_through_the_api(api_client):
    models = api_client.studio.data_dir / "models"
    api_client.post("/api/v1/text/generate", json={"prompt": "x", "max_new_tokens": 1})  # builds the starter
    shutil.copytree(models / "starter" / "gpt2-tiny", models / "local" / "text" / "gpt2-copy")
    body = {"prompt": "Once", "a": {"model": "starter/gpt2-tiny"}, "b": {"model": "local/text/gpt2-copy"},
            "seed": 3, "max_new_tokens": 6}
    r = api_client.post("/api/v1/compare", json=body)
    assert r.status_code == 200, r.text
    cmp = r.json()
    assert cmp["a"]["text"] == cmp["b"]["text"]  # same weights, same seed
    v = api_client.post(f"/api/v1/compare/{cmp['id']}/vote", json={"winner": "b"})
    assert v.status_code == 200
    shown_b = v.json()["b"]["model"]  # the arena picks the order: the vote reveals it
    assert {v.json()["a"]["model"], shown_b} == {"starter/gpt2-tiny", "local/text/gpt2-copy"}
    again = api_client.post(f"/api/v1/compare/{cmp['id']}/vote", json={"winner": "a"})
    assert again.status_code == 409
    board = api_client.get("/api/v1/compare/leaderboard").json()["rows"]
    assert board[0]["version"] == shown_b and board[0]["wins"] == 1
    dpo = api_client.get("/api/v1/feedback/export?format=dpo").text.strip().splitlines()
    assert len(dpo) == 1
    same = api_client.post("/api/v1/compare", json={**body, "b": {"model": "starter/gpt2-tiny"}})
    assert same.status_code == 422
    assert api_client.post("/api/v1/compare/cmp_nope/vote", json={"winner": "a"}).status_code == 404
