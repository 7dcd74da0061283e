"""A text model served elsewhere: `--remote-text NAME=URL@MODEL` lists `remote/NAME`, which generates
through REST, the OpenAI dialect and the Text tab like a local model, its outputs stored and rated.
The server here is a second studio's own `/v1` (any OpenAI-compatible server does)."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from tests.conftest import free_port, start_studio

SERVED = "starter/gpt2-stories"  # what the second studio serves


@pytest.fixture(scope="module")
def studios(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    peer = start_studio(["--offline"], root / "peer" / "data", wait=False)  # both start at once
    main = start_studio(["--offline", "--remote-text", f"peer={peer.url}/v1@{SERVED}",
                         "--remote-text", f"gone=http://127.0.0.1:{free_port()}/v1@x"], root / "main" / "data",
                        wait=False).wait_ready()
    peer.wait_ready()
    yield main, peer
    main.stop()
    peer.stop()


def stored_outputs(studio) -> list[tuple[str, str]]:
    """(model, text) of every output the studio stored, read from its database."""
    with sqlite3.connect(studio.data_dir / "studio.db") as db:
        return db.execute("SELECT model, text FROM outputs ORDER BY created_at").fetchall()


def gen(studio, **body) -> httpx.Response:
    return httpx.post(f"{studio.url}/api/v1/text/generate", json={"prompt": "Once upon a time", **body}, timeout=60)


def test_a_remote_model_is_listed_generates_is_stored_and_rated(studios):
    main, peer = studios
    listed = {m["id"]: m for m in httpx.get(f"{main.url}/api/v1/models").json()["text"]}
    assert listed["remote/peer"]["source"] == "remote" and not listed["remote/peer"]["default"]

    r = gen(main, model="remote/peer", seed=5, max_new_tokens=12, num_outputs=2)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "remote/peer" and len(body["outputs"]) == 2
    texts = [o["text"] for o in body["outputs"]]
    assert all(texts) and all(o["seed"] == 5 for o in body["outputs"])
    # The peer made them: the same seed asked of the peer directly gives the same texts
    direct = httpx.post(f"{peer.url}/v1/completions", json={"model": SERVED, "prompt": "Once upon a time",
                                                           "max_tokens": 12, "n": 2, "seed": 5,
                                                           "temperature": 0.8, "top_p": 0.95}, timeout=60)
    assert [c["text"] for c in direct.json()["choices"]] == texts
    oid = body["outputs"][0]["id"]
    stored = httpx.get(f"{main.url}/api/v1/outputs/{oid}").json()
    assert stored["model"] == "remote/peer" and stored["text"] == texts[0]
    rated = httpx.post(f"{main.url}/api/v1/feedback", json={"output_id": oid, "rating": "up"})
    assert rated.status_code == 200 and httpx.get(f"{main.url}/api/v1/outputs/{oid}").json()["rating"] == "up"

    chat = httpx.post(f"{main.url}/v1/chat/completions", timeout=60, json={
        "model": "remote/peer", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 8})
    assert chat.status_code == 200, chat.text
    assert chat.json()["model"] == "remote/peer"


def test_what_a_remote_model_cannot_do_is_refused_and_a_dead_server_is_a_502(studios):
    main, _ = studios
    r = gen(main, model="remote/peer", logprobs=2)
    assert r.status_code == 422 and "local models only" in r.json()["error"]["message"]
    r = httpx.post(f"{main.url}/api/v1/text/perplexity", json={"text": "A fox ran home.", "model": "remote/peer"})
    assert r.status_code == 422 and "served elsewhere" in r.json()["error"]["message"]
    before = stored_outputs(main)
    r = gen(main, model="remote/gone", max_new_tokens=4)
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "remote_failed" and "could not be reached" in r.json()["error"]["message"]
    assert stored_outputs(main) == before  # nothing half-stored


def test_a_malformed_remote_flag_says_how_to_write_it(tmp_path):
    from studio.cli import config_from_args, parser

    for spec in ("peer", "peer=ftp://x/v1@m", "Peer Name=http://x/v1@m", "peer=http://x/v1"):
        with pytest.raises(SystemExit, match="NAME=URL@MODEL"):
            config_from_args(parser().parse_args(["--remote-text", spec, "--data-dir", str(tmp_path)]))


def test_a_remote_model_through_the_gradio_api_and_as_an_experiment_arm(studios, tmp_path):
    from gradio_client import Client

    main, _ = studios
    text, result = Client(main.url, verbose=False, download_files=str(tmp_path)).predict(
        "Once upon a time", model="remote/peer", seed=2, max_new_tokens=6, api_name="/generate_text")
    assert result["model"] == "remote/peer" and text == result["outputs"][0]["text"]
    exp = httpx.post(f"{main.url}/api/v1/experiments", json={
        "name": "remote vs local", "arms": [{"model": SERVED}, {"model": "remote/peer"}]})
    assert exp.status_code == 201, exp.text
    r = gen(main, max_new_tokens=4, num_outputs=1)  # unpinned: served by one of the arms
    assert r.status_code == 200 and r.json()["model"] in (SERVED, "remote/peer"), r.text
    assert httpx.post(f"{main.url}/api/v1/experiments/{exp.json()['id']}/stop").status_code == 200
