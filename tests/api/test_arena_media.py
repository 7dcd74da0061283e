"""The arena for images and speech: two versions (the starter and a local copy of it) make the same
prompt with the same seed; nothing names a version before the vote — not the compare answer, not
GET /outputs/{id}, not the PNG — the vote reveals both, and each kind has its own leaderboard."""

from __future__ import annotations

import shutil

import pytest

MEDIA = {  # kind → (starter id, its folder under models/, the local copy's id, a compare body)
    "image": ("starter/sd-tiny", "starter/sd-tiny", "local/image/sd-copy",
              {"prompt": "a red circle", "steps": 2, "width": 64, "height": 64, "guidance_scale": 5.0}),
    "speech": ("starter/vits-tiny", "starter/vits-tiny", "local/speech/vits-copy", {"prompt": "Hello there."}),
}  # fmt: skip


def two_versions(client, kind: str) -> tuple[str, str]:
    """The starter and a copy of its folder dropped in as a local model (models/local/<kind>/<name>)."""
    starter, folder, copy, _ = MEDIA[kind]
    studio = client.studio
    studio.models.registry.location(studio.models.resolve(starter, kind))  # builds the starter
    models = studio.data_dir / "models"
    shutil.copytree(models / folder, models / copy)
    return starter, copy


@pytest.mark.parametrize("kind", ["image", "speech"])
def test_media_compares_are_blind_until_the_vote_which_reveals_both(api_client, kind):
    starter, copy = two_versions(api_client, kind)
    body = {"kind": kind, "a": {"model": starter}, "b": {"model": copy}, "seed": 7, **MEDIA[kind][3]}
    voted = {}
    for winner in ("a", "b", "a"):
        r = api_client.post("/api/v1/compare", json=body)
        assert r.status_code == 200, r.text
        cmp = r.json()
        assert starter not in r.text and copy not in r.text, r.text
        for side in ("a", "b"):
            out = cmp[side]
            assert out["kind"] == kind and out["url"].endswith("/file") and out["model"] is None
            got = api_client.get(f"/api/v1/outputs/{out['id']}")
            assert got.status_code == 200 and got.json()["blind"] is True
            assert starter not in got.text and copy not in got.text, got.text
            data = api_client.get(out["url"]).content
            assert data[:4] in (b"\x89PNG", b"RIFF") and starter.encode() not in data and copy.encode() not in data
        # same prompt, same seed, same weights: the two sides are the same picture / clip
        assert api_client.get(cmp["a"]["url"]).content == api_client.get(cmp["b"]["url"]).content

        v = api_client.post(f"/api/v1/compare/{cmp['id']}/vote", json={"winner": winner})
        assert v.status_code == 200, v.text
        revealed = v.json()
        assert {revealed["a"]["model"], revealed["b"]["model"]} == {starter, copy}
        variant = {"image": "lora", "speech": "voice"}[kind]
        assert revealed["a"][variant] is None and "adapter" not in revealed["a"]
        after = api_client.get(f"/api/v1/outputs/{cmp['a']['id']}").json()
        assert after["model"] == revealed["a"]["model"] and "blind" not in after
        voted[revealed[winner]["model"]] = voted.get(revealed[winner]["model"], 0) + 1

    rows = api_client.get(f"/api/v1/compare/leaderboard?kind={kind}").json()["rows"]
    board = {row["version"]: row for row in rows}
    assert set(board) == {starter, copy}
    assert all(board[v]["wins"] == voted.get(v, 0) and board[v]["games"] == 3 for v in board)
    assert api_client.get("/api/v1/compare/leaderboard?kind=text").json()["rows"] == []  # kinds apart


def test_both_sides_of_an_image_comparison_have_one_size(api_client):
    """The copy is a local model (SD defaults: 512×512) and the starter draws 64×64: a size would tell."""
    from io import BytesIO

    from PIL import Image

    starter, copy = two_versions(api_client, "image")
    r = api_client.post("/api/v1/compare", json={"kind": "image", "prompt": "a blue square", "steps": 1,
                                                 "a": {"model": starter}, "b": {"model": copy}})  # fmt: skip
    assert r.status_code == 200, r.text
    sizes = {Image.open(BytesIO(api_client.get(r.json()[s]["url"]).content)).size for s in ("a", "b")}
    assert sizes == {(64, 64)}


def test_sides_are_checked_for_their_kind_before_anything_runs(api_client):
    starter, copy = two_versions(api_client, "image")
    count = lambda: api_client.studio.store.query_one("SELECT COUNT(*) AS n FROM outputs")["n"]  # noqa: E731
    before = count()
    for body in [
        {"kind": "image", "prompt": "x", "a": {"model": starter}, "b": {"model": starter}, "steps": 1},
        {"kind": "image", "prompt": "x", "a": {"model": starter, "adapter": "ad_x"}, "b": {"model": copy}},
        {"kind": "image", "prompt": "x", "a": {"model": starter}, "b": {"model": copy}, "max_new_tokens": 5},
        {"kind": "speech", "prompt": "Hi.", "a": {"model": "starter/vits-tiny", "voice": "nobody"},
         "b": {"model": "starter/vits-tiny"}},
        {"kind": "image", "prompt": "x", "a": {"model": starter}, "b": {"model": copy}, "width": 60},
        {"kind": "video", "prompt": "x", "a": {}, "b": {}},
    ]:
        r = api_client.post("/api/v1/compare", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["message"]
    assert count() == before
    assert api_client.get("/api/v1/compare/leaderboard?kind=video").status_code == 422


def test_a_pair_is_admitted_once_within_the_visitors_limits(tmp_path):
    """One turn at the gate for both sides (a visitor may hold one), and the limits weigh what runs."""
    from fastapi.testclient import TestClient

    from studio.app import build_app
    from studio.config import RequestLimits, StudioConfig

    limits = RequestLimits(image_steps=2, image_pixels=64 * 64, speech_chars=20)
    config = StudioConfig(data_dir=tmp_path / "d", offline=True, accounts=[("admin", "pw-admin")],
                          guest_access="generate", limits=limits, max_per_user=1)  # fmt: skip
    with TestClient(build_app(config, ui=False)) as client:
        client.studio = client.app.state.studio
        for kind in ("image", "speech"):
            starter, copy = two_versions(client, kind)
            body = {"kind": kind, "a": {"model": starter}, "b": {"model": copy}, **MEDIA[kind][3]}
            assert client.post("/api/v1/compare", json=body).status_code == 200
            over = {**body, "steps": 3} if kind == "image" else {**body, "prompt": "Hello there, how are you?"}
            r = client.post("/api/v1/compare", json=over)
            assert r.status_code == 422 and "at most" in r.json()["error"]["message"], r.text
        # no size given: the copy's default (512×512) is not what runs — both sides draw 64×64
        image = {"kind": "image", "prompt": "x", "steps": 1, "a": {"model": "starter/sd-tiny"},
                 "b": {"model": "local/image/sd-copy"}}  # fmt: skip
        assert client.post("/api/v1/compare", json=image).status_code == 200
