"""The arena is blind in the service: the order of the two versions is random, and nothing the
studio answers says which version made an arena output until that comparison is voted."""

from __future__ import annotations

import shutil
from collections import Counter

STARTER, COPY = "starter/gpt2-tiny", "local/text/gpt2-copy"


def two_versions(api_client) -> None:
    models = api_client.studio.data_dir / "models"
    api_client.post("/api/v1/text/generate", json={"prompt": "x", "max_new_tokens": 1})  # builds the starter
    shutil.copytree(models / "starter" / "gpt2-tiny", models / "local" / "text" / "gpt2-copy")


def test_twenty_compares_reveal_nothing_before_the_vote_and_shuffle_sides(api_client):
    two_versions(api_client)
    body = {"prompt": "Once", "a": {"model": STARTER}, "b": {"model": COPY}, "max_new_tokens": 2}
    first_side = Counter()
    for i in range(20):
        r = api_client.post("/api/v1/compare", json={**body, "seed": i})
        assert r.status_code == 200, r.text
        cmp = r.json()
        assert STARTER not in r.text and COPY not in r.text, r.text
        for side in ("a", "b"):
            out = api_client.get(f"/api/v1/outputs/{cmp[side]['id']}")
            assert out.status_code == 200
            assert STARTER not in out.text and COPY not in out.text, out.text
            assert out.json()["model"] is None and out.json()["blind"] is True
        v = api_client.post(f"/api/v1/compare/{cmp['id']}/vote", json={"winner": "a"})
        assert v.status_code == 200
        revealed = v.json()
        assert {revealed["a"]["model"], revealed["b"]["model"]} == {STARTER, COPY}
        first_side[revealed["a"]["model"]] += 1
        after = api_client.get(f"/api/v1/outputs/{cmp['a']['id']}").json()
        assert after["model"] == revealed["a"]["model"] and "blind" not in after
    assert 4 <= first_side[STARTER] <= 16 and 4 <= first_side[COPY] <= 16, first_side
    # the leaderboard counts each vote for the version that was really shown as "a"
    board = {row["version"]: row for row in api_client.get("/api/v1/compare/leaderboard").json()["rows"]}
    assert board[STARTER]["wins"] == first_side[STARTER] and board[COPY]["wins"] == first_side[COPY]


def test_the_same_version_twice_is_refused_before_anything_runs(api_client):
    two_versions(api_client)
    before = api_client.studio.store.query_one("SELECT COUNT(*) AS n FROM outputs")["n"]
    r = api_client.post("/api/v1/compare", json={"prompt": "Once", "a": {"model": STARTER},
                                                 "b": {"model": STARTER}})
    assert r.status_code == 422
    assert api_client.studio.store.query_one("SELECT COUNT(*) AS n FROM outputs")["n"] == before
