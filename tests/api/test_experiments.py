"""A live experiment end to end: unpinned text traffic split between two versions, simulated raters
who like one arm more, an always-valid decision for that arm, promotion to the default, and all of
it still there after a restart."""

from __future__ import annotations

import random
import shutil

from fastapi.testclient import TestClient

from studio.app import build_app
from studio.config import StudioConfig

STARTER, COPY = "starter/gpt2-tiny", "local/text/gpt2-copy"
ADMIN = ("admin", "pw-admin")
USERS = [(f"u{i}", f"pw-{i}") for i in range(24)]


def config(data_dir) -> StudioConfig:
    return StudioConfig(data_dir=data_dir, offline=True, accounts=[ADMIN, *USERS])


def two_text_versions(c) -> None:
    models = c.app.state.studio.data_dir / "models"
    c.post("/api/v1/text/generate", json={"prompt": "x", "max_new_tokens": 1}, auth=ADMIN)  # builds the starter
    shutil.copytree(models / "starter" / "gpt2-tiny", models / "local" / "text" / "gpt2-copy")


def test_an_experiment_finds_the_better_arm_promotes_it_and_survives_a_restart(tmp_path):
    data = tmp_path / "d"
    rng = random.Random(7)
    with TestClient(build_app(config(data), ui=False)) as c:
        two_text_versions(c)
        bad = c.post("/api/v1/experiments", json={"name": "x", "kind": "text",
                                                  "arms": [{"model": STARTER}, {"model": STARTER}]}, auth=ADMIN)
        assert bad.status_code == 422
        assert c.post("/api/v1/experiments", json={"name": "x", "arms": [{"model": STARTER}, {"model": "nope"}]},
                      auth=ADMIN).status_code == 404
        assert c.post("/api/v1/experiments", json={"name": "x", "arms": [{"model": STARTER}, {"model": COPY}]},
                      auth=USERS[0]).status_code == 403
        r = c.post("/api/v1/experiments", json={"name": "copy vs starter", "kind": "text", "min_samples": 40,
                                                "auto_promote": True,
                                                "arms": [{"model": STARTER}, {"model": COPY}]}, auth=ADMIN)
        assert r.status_code == 201, r.text
        exp = r.json()
        assert exp["status"] == "running"
        again = c.post("/api/v1/experiments", json={"name": "y", "arms": [{"model": STARTER}, {"model": COPY}]},
                       auth=ADMIN)
        assert again.status_code == 409

        # simulated raters: the copy (arm 1) is liked 80 % of the time, the starter 30 %
        like = {0: 0.3, 1: 0.8}
        served, decided = {0: 0, 1: 0}, False
        for _ in range(60):
            for user in USERS:
                out = c.post("/api/v1/text/generate", json={"prompt": "Once", "max_new_tokens": 2}, auth=user)
                assert out.status_code == 200, out.text
                output_id = out.json()["outputs"][0]["id"]
                seen_by_user = c.get(f"/api/v1/outputs/{output_id}", auth=user).json()
                assert "experiment" not in seen_by_user  # only admins see the arm
                seen = c.get(f"/api/v1/outputs/{output_id}", auth=ADMIN).json()
                if "experiment" not in seen:  # decided: unpinned traffic no longer goes to the arms
                    decided = True
                    break
                arm = seen["experiment"]["arm"]
                served[arm] += 1
                rating = "up" if rng.random() < like[arm] else "down"
                assert c.post("/api/v1/feedback", json={"output_id": output_id, "rating": rating},
                              auth=user).status_code == 200
            if decided:
                break
        done = c.get(f"/api/v1/experiments/{exp['id']}", auth=ADMIN).json()
        print(f"decided after {done['decision']['rated']} ratings; served {served}")
        assert done["status"] == "concluded" and done["decision"]["winner"] == 1
        assert done["promoted"] and done["decision"]["rated"] >= 40
        assert served[0] > 0 and served[1] > 0  # both arms saw traffic
        assert [a["action"] for a in done["audit"]] == ["experiment.start", "experiment.decide", "experiment.promote"]
        lo, hi = done["arms"][1]["interval"]
        assert lo <= done["arms"][1]["approval"] <= hi
        models = c.get("/api/v1/models", auth=ADMIN).json()["text"]
        assert [m["id"] for m in models if m["default"]] == [COPY]
        # traffic that pins no version now gets the winner
        assert c.post("/api/v1/text/generate", json={"prompt": "Once", "max_new_tokens": 1},
                      auth=USERS[0]).json()["model"] == COPY
        assert c.get(f"/api/v1/experiments/{exp['id']}/curve", auth=ADMIN).json()[-1]["ratings"] > 0

    with TestClient(build_app(config(data), ui=False)) as c:  # a restart keeps it all
        kept = c.get(f"/api/v1/experiments/{exp['id']}", auth=ADMIN).json()
        assert kept["status"] == "concluded" and kept["promoted"] and kept["decision"]["winner"] == 1
        models = c.get("/api/v1/models", auth=ADMIN).json()["text"]
        assert [m["id"] for m in models if m["default"]] == [COPY]


def test_stop_and_manual_promotion(tmp_path):
    with TestClient(build_app(config(tmp_path / "d"), ui=False)) as c:
        two_text_versions(c)
        exp = c.post("/api/v1/experiments", json={"name": "manual", "arms": [{"model": STARTER}, {"model": COPY}]},
                     auth=ADMIN).json()
        assert c.post(f"/api/v1/experiments/{exp['id']}/promote", auth=ADMIN).status_code == 409  # no winner yet
        # the OpenAI dialect's "default" model pins nothing: the experiment serves it
        chat = c.post("/v1/chat/completions", json={"model": "default", "max_tokens": 2,
                                                    "messages": [{"role": "user", "content": "hi"}]}, auth=USERS[1])
        assert chat.status_code == 200, chat.text
        served = c.get(f"/api/v1/outputs/{chat.json()['choices'][0]['output_id']}", auth=ADMIN).json()
        assert served["experiment"]["experiment_id"] == exp["id"]
        stopped = c.post(f"/api/v1/experiments/{exp['id']}/stop", auth=ADMIN).json()
        assert stopped["status"] == "stopped"
        assert c.post(f"/api/v1/experiments/{exp['id']}/stop", auth=ADMIN).status_code == 409
        promoted = c.post(f"/api/v1/experiments/{exp['id']}/promote", json={"arm": 1}, auth=ADMIN).json()
        assert promoted["promoted"] and promoted["audit"][-1]["user"] == "admin"
        assert c.post("/api/v1/text/generate", json={"prompt": "x", "max_new_tokens": 1},
                      auth=ADMIN).json()["model"] == COPY
        assert c.get("/api/v1/experiments/exp_nope", auth=ADMIN).status_code == 404


def test_the_feedback_tab_starts_and_shows_an_experiment(tmp_path):
    import gradio as gr

    from studio.ui import build_ui

    with TestClient(build_app(config(tmp_path / "d"), ui=False)) as c:
        two_text_versions(c)
        studio = c.app.state.studio
        fns = {f.fn.__name__: f.fn for f in build_ui(studio).fns.values()
               if f.fn is not None and f.fn.__module__ == "studio.ui.experiments_panel"}
        admin, visitor = gr.Request(username="admin"), gr.Request(username="u1")
        with __import__("pytest").raises(gr.Error, match="(?i)only admins"):
            fns["on_start"]("n", "text", [STARTER, COPY], "", 10, False, visitor)
        message, experiment_id = fns["on_start"]("ui test", "text", [STARTER, COPY], "70, 30", 10, False, admin)
        assert "Started" in message and studio.experiments.get(experiment_id)["arms"][0]["weight"] == 0.7
        table, _, details, _ = fns["refresh"](experiment_id, admin)
        assert list(table["name"]) == ["ui test"] and "arm 1: `local/text/gpt2-copy`" in details
        assert fns["refresh"](experiment_id, visitor)[2] == gr.update()  # visitors see nothing, no error
        assert "stopped" in fns["on_stop"](experiment_id, admin)
