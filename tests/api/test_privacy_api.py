"""Privacy on a shared studio: people export only their own ratings (admins export all), job logs
are for admins, and paths shown through the API are relative to the data dir."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from studio.app import build_app
from studio.config import StudioConfig
from studio.services.auth import User
from studio.store import new_id, utcnow

ADA, BOB, CY = ("ada", "pw-ada"), ("bob", "pw-bob"), ("cy", "pw-cy")  # ada is the admin


def auth(account: tuple[str, str]) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(":".join(account).encode()).decode()}


@pytest.fixture
def client(tmp_path):
    config = StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu", accounts=[ADA, BOB, CY],
                          guest_access="generate", max_concurrent_jobs=0)
    with TestClient(build_app(config, ui=False)) as c:
        c.studio = c.app.state.studio
        yield c


def text_output(studio, prompt: str) -> str:
    return studio.outputs.record(kind="text", prompt=prompt, params={}, model="starter/gpt2-tiny", adapter=None,
                                 seed=1, user="someone", text=f"answer to {prompt}")["id"]


def compare(studio, voter: str, prompt: str) -> None:
    a, b = text_output(studio, prompt + " (a)"), text_output(studio, prompt + " (b)")
    with studio.store.transaction() as c:
        c.execute("INSERT INTO comparisons (id, kind, prompt, a_output_id, b_output_id, winner, user, created_at,"
                  " voted_at) VALUES (?, 'text', ?, ?, ?, 'a', ?, ?, ?)",
                  (new_id("cmp_"), prompt, a, b, voter, utcnow(), utcnow()))


def ndjson(r) -> list[dict]:
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]


@pytest.fixture
def rated(client):
    studio = client.studio
    bobs, cys = text_output(studio, "bob's private prompt"), text_output(studio, "cy's private prompt")
    for who, oid, rating, comment in ((BOB, bobs, "up", "bob's comment"), (CY, cys, "down", "cy's secret"),
                                      (ADA, bobs, "down", "ada's note")):
        r = client.post("/api/v1/feedback", json={"output_id": oid, "rating": rating, "comment": comment},
                        headers=auth(who))
        assert r.status_code == 200, r.text
    compare(studio, "bob", "bob's duel")
    compare(studio, "cy", "cy's duel")
    return client


def test_a_non_admin_exports_only_their_own_ratings_and_votes(rated):
    rows = ndjson(rated.get("/api/v1/feedback/export", headers=auth(BOB)))
    assert [(r["user"], r["comment"]) for r in rows] == [("bob", "bob's comment")]
    assert "cy's" not in json.dumps(rows) and "ada's" not in json.dumps(rows)
    kto = ndjson(rated.get("/api/v1/feedback/export?format=kto", headers=auth(BOB)))
    assert kto == [{"prompt": "bob's private prompt", "completion": "answer to bob's private prompt", "label": True}]
    dpo = ndjson(rated.get("/api/v1/feedback/export?format=dpo", headers=auth(BOB)))
    assert [r["prompt"] for r in dpo] == ["bob's duel"]


def test_an_admin_exports_everyone(rated):
    rows = ndjson(rated.get("/api/v1/feedback/export", headers=auth(ADA)))
    assert sorted(r["user"] for r in rows) == ["ada", "bob", "cy"]
    assert len(ndjson(rated.get("/api/v1/feedback/export?format=kto", headers=auth(ADA)))) == 3
    assert sorted(r["prompt"] for r in ndjson(rated.get("/api/v1/feedback/export?format=dpo", headers=auth(ADA)))) \
        == ["bob's duel", "cy's duel"]


def test_visitors_without_an_account_cannot_export(rated):
    r = rated.get("/api/v1/feedback/export")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert "sign in" in r.json()["error"]["message"].lower()


def test_stats_stay_counts_without_prompts_comments_or_names(rated):
    body = rated.get("/api/v1/feedback/stats", headers=auth(BOB)).json()
    assert body["total"] == 3
    text = json.dumps(body)
    assert "comment" not in text and "prompt" not in text and "bob" not in text and "cy" not in text


def test_the_ui_export_follows_the_same_rule_into_a_unique_scratch_file(rated):
    from studio.ui.feedback_tab import export_file

    studio = rated.studio
    first = export_file(studio, "jsonl", User(name="bob", is_admin=False))
    second = export_file(studio, "jsonl", User(name="bob", is_admin=False))
    assert first != second
    for path in (first, second):
        assert path.is_relative_to(studio.data_dir / "tmp") and path.parent != studio.data_dir / "tmp"
        assert [json.loads(line)["user"] for line in path.read_text().splitlines()] == ["bob"]
    everyone = export_file(studio, "jsonl", User(name="ada", is_admin=True))
    assert len(everyone.read_text().splitlines()) == 3
    studio.scratch.sweep()
    assert not first.exists() and not everyone.exists()


def test_job_logs_are_admin_only_and_paths_in_logs_and_errors_are_relative(client):
    studio = client.studio
    data = str(studio.data_dir)
    job = client.post("/api/v1/jobs", json={"kind": "selftest", "params": {"max_steps": 2}}, headers=auth(ADA))
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    log = studio.jobs.run_dir(job_id).log_path
    log.write_text(f"saving {data}/runs/{job_id}/checkpoints/step-1\nreading {data}/datasets/ds_1/data.jsonl\n")

    for who in (BOB, None):
        r = client.get(f"/api/v1/jobs/{job_id}/log", headers=auth(who) if who else {})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    r = client.get(f"/api/v1/jobs/{job_id}/log", headers=auth(ADA))
    assert r.status_code == 200 and data not in r.text
    assert f"saving runs/{job_id}/checkpoints/step-1" in r.text and "reading datasets/ds_1/data.jsonl" in r.text

    studio.jobs.runner.settle(job_id, "failed", error=f"FileNotFoundError: {data}/datasets/ds_1/data.jsonl")
    for r in (client.get(f"/api/v1/jobs/{job_id}", headers=auth(BOB)), client.get("/api/v1/jobs", headers=auth(BOB))):
        assert r.status_code == 200 and data not in r.text
    assert client.get(f"/api/v1/jobs/{job_id}", headers=auth(BOB)).json()["error"] == \
        "FileNotFoundError: datasets/ds_1/data.jsonl"


def test_the_page_shows_people_only_their_own_ratings_and_admins_the_logs(client):
    import gradio as gr

    from studio.ui import build_ui

    studio = client.studio
    for who in ("bob", "cy"):
        studio.feedback.rate(text_output(studio, f"{who}'s prompt"), "up", who, comment=f"{who} says hi")
    fns = {(f.fn.__module__, f.fn.__name__): f.fn for f in build_ui(studio).fns.values() if f.fn is not None}
    dashboard = fns[("studio.ui.feedback_tab", "dashboard")]
    bobs = dashboard("", "", "", gr.Request(username="bob"))[3]
    assert list(bobs["user"]) == ["bob"] and "cy says hi" not in bobs.to_string()
    assert set(dashboard("", "", "", gr.Request(username="ada"))[3]["user"]) == {"bob", "cy"}
    refresh = fns[("studio.ui.training_tab", "refresh")]
    assert all(update is gr.skip() or update == gr.skip() for update in refresh(None, None, None, gr.Request(username="bob")))


def test_the_image_history_shows_people_their_own_images_searchable_by_prompt(client):
    studio = client.studio
    made = {}
    for who, prompt in (("bob", "a red circle"), ("bob", "a blue 100%_square"), ("cy", "a red triangle")):
        output_id, path = studio.outputs.new_file_path(".png")
        path.write_bytes(b"\x89PNG")
        studio.outputs.record(kind="image", prompt=prompt, params={}, model="m", adapter=None, seed=1, user=who,
                              file=path, output_id=output_id)
        made[(who, prompt)] = output_id
    bob, ada = User("bob", is_admin=False), User("ada", is_admin=True)
    assert {r["prompt"] for r in studio.image.recent(user=bob)} == {"a red circle", "a blue 100%_square"}
    assert [r["prompt"] for r in studio.image.recent(user=bob, search="RED")] == ["a red circle"]
    assert [r["prompt"] for r in studio.image.recent(user=bob, search="100%_")] == ["a blue 100%_square"]
    assert studio.image.recent(user=bob, search="%") == studio.image.recent(user=bob, search="100%")
    assert {r["prompt"] for r in studio.image.recent(user=ada, search="red")} == {"a red circle", "a red triangle"}
