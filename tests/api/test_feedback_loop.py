"""The loop end to end: a model that writes in two styles, people rate one style up and the
other down, a `text-feedback` job tunes an adapter from those ratings, and fresh generations
(same prompt, new seeds) show the preferred style far more often."""

from __future__ import annotations

import json
import random

import pytest
from fastapi.testclient import TestClient

from studio.app import build_app
from studio.config import StudioConfig
from tests.api.test_text_lora_job import wait_job

PROMPT = "once"


def corpus() -> str:
    rng = random.Random(0)
    lines = []
    for i in range(200):
        if rng.random() < 0.5:
            lines.append(f"once the cat number {i} sleeps on the warm mat .")
        else:
            lines.append(f"once a dog number {i} runs in the green park !")
    return "".join(json.dumps({"text": line}) + "\n" for line in lines)


def style(text: str) -> str | None:
    if "cat" in text or "mat" in text:
        return "cat"
    if "dog" in text or "park" in text:
        return "dog"
    return None


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = StudioConfig(data_dir=tmp_path_factory.mktemp("loop") / "data", offline=True, device="cpu")
    with TestClient(build_app(config, ui=False)) as c:
        yield c


def generate(client, seeds, **body) -> list[dict]:
    outs = []
    for seed in seeds:
        r = client.post("/api/v1/text/generate", json={"prompt": PROMPT, "max_new_tokens": 8, "temperature": 1.0,
                                                       "top_k": 0, "top_p": 1.0, "num_outputs": 16, "seed": seed,
                                                       **body})
        assert r.status_code == 200, r.text
        outs += r.json()["outputs"]
    return outs


def share(outputs: list[dict], wanted: str) -> float:
    styles = [style(o["text"]) for o in outputs]
    return sum(s == wanted for s in styles) / len(styles)


@pytest.fixture(scope="module")
def two_styles(client) -> str:
    """A model that writes both styles (full fine-tune: the starter's default method), trained once for
    the tests below; before anyone rates it, a feedback job is refused clearly and nothing is queued."""
    r = client.post("/api/v1/datasets", files=[("file", ("styles.jsonl", corpus().encode()))],
                    data={"kind": "text", "name": "two styles"})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/jobs", json={"kind": "text-lora", "dataset_id": r.json()["id"],
                                          "base_model": "starter/gpt2-tiny",
                                          "params": {"max_steps": 200, "block_size": 64, "save_every": 200}})
    job = wait_job(client, r.json()["id"], timeout=300)
    assert job["status"] == "completed", job["error"]
    model = job["artifact"]["id"]
    jobs_before = client.get("/api/v1/jobs").json()
    r = client.post("/api/v1/jobs", json={"kind": "text-feedback", "base_model": model, "params": {}})
    assert r.status_code == 422 and "Rate more" in r.json()["error"]["message"]
    assert client.get("/api/v1/jobs").json() == jobs_before
    return model


@pytest.mark.slow
def test_ratings_make_the_preferred_style_more_common(client, two_styles):
    # 1-2. A model that writes both styles, not rated yet (the fixture: a feedback job was refused)
    model = two_styles

    # 3. People rate: cat stories up, dog stories down
    before = generate(client, seeds=[1, 2, 3], model=model)
    before_share = share(before, "cat")
    assert before_share < 0.6 and any(style(o["text"]) == "cat" for o in before), [o["text"] for o in before]
    for o in before:
        s = style(o["text"])
        if s:
            r = client.post("/api/v1/feedback", json={"output_id": o["id"], "rating": "up" if s == "cat" else "down"})
            assert r.status_code == 200

    # 4. Train from the ratings
    r = client.post("/api/v1/jobs", json={"kind": "text-feedback", "base_model": model,
                                          "params": {"max_steps": 40, "save_every": 20}})
    assert r.status_code == 201, r.text
    job = wait_job(client, r.json()["id"], timeout=300)
    assert job["status"] == "completed", job["error"]
    assert job["metrics"]["method"] == "kto" and job["artifact"]["type"] == "text_adapter"
    adapter = job["artifact"]["id"]

    # 5. Fresh generations with new seeds: the preferred style is clearly more common
    after = generate(client, seeds=[101, 102, 103], model=model, adapter=adapter)
    after_share = share(after, "cat")
    print(f"\ncat share: {before_share:.0%} before → {after_share:.0%} after ({len(after)} samples)")
    assert after_share >= before_share + 0.25 and after_share >= 0.75


def test_kto_weights_balance_up_and_down():
    from engines.text.feedback_train import TextFeedbackConfig, choose_method, kto_weights

    rows = [{"label": True}] * 6 + [{"label": False}] * 42
    assert kto_weights(TextFeedbackConfig(), rows) == (7.0, 1.0)
    assert kto_weights(TextFeedbackConfig(desirable_weight=2.0), rows) == (2.0, 1.0)
    with pytest.raises(ValueError, match="all 10 ratings are thumbs up".replace("all", "All")):
        choose_method(TextFeedbackConfig(), [{"label": True}] * 10, [])
    with pytest.raises(ValueError, match="at least 8 rated outputs"):
        choose_method(TextFeedbackConfig(), [{"label": True}, {"label": False}], [])
    pairs = [{"prompt": "p", "chosen": "a", "rejected": "b"}] * 8
    assert choose_method(TextFeedbackConfig(), rows, pairs) == "dpo"


@pytest.mark.slow
def test_votes_train_with_dpo(client):
    import shutil

    client.post("/api/v1/text/generate", json={"prompt": "x", "max_new_tokens": 1})  # builds the starter
    models = client.app.state.studio.data_dir / "models"
    shutil.copytree(models / "starter" / "gpt2-tiny", models / "local" / "text" / "other", dirs_exist_ok=True)
    for seed in range(8):
        r = client.post("/api/v1/compare", json={"prompt": PROMPT, "a": {"model": "starter/gpt2-tiny"},
                                                 "b": {"model": "local/text/other"}, "seed": seed,
                                                 "max_new_tokens": 6})
        assert r.status_code == 200, r.text
        client.post(f"/api/v1/compare/{r.json()['id']}/vote", json={"winner": "a" if seed % 2 else "b"})
    r = client.post("/api/v1/jobs", json={"kind": "text-feedback", "base_model": "starter/gpt2-tiny",
                                          "params": {"method": "dpo", "max_steps": 4, "batch_size": 4}})
    assert r.status_code == 201, r.text
    job = wait_job(client, r.json()["id"], timeout=300)
    assert job["status"] == "completed", job["error"]
    assert job["metrics"]["method"] == "dpo" and job["metrics"]["examples"] == 8


@pytest.mark.slow
def test_a_reward_model_judges_and_best_of_n_picks_the_preferred_style(client, two_styles):
    # 1. A model that writes both styles, and people's thumbs: cat stories up, dog stories down
    model = two_styles
    rated = 0
    for o in generate(client, seeds=range(11, 19), model=model):
        cat, dog = ("cat" in o["text"] or "mat" in o["text"]), ("dog" in o["text"] or "park" in o["text"])
        if cat != dog:  # people rate what is clearly one style
            client.post("/api/v1/feedback", json={"output_id": o["id"], "rating": "up" if cat else "down"})
            rated += 1

    # 2. A reward model on those ratings; its held-out accuracy is measured on answers it never saw
    assert client.post("/api/v1/jobs", json={"kind": "reward", "base_model": "nope"}).status_code == 422
    r = client.post("/api/v1/jobs", json={"kind": "reward", "base_model": model,
                                          "params": {"max_steps": 60, "save_every": 60}})
    assert r.status_code == 201, r.text
    job = wait_job(client, r.json()["id"], timeout=300)
    assert job["status"] == "completed", job["error"]
    assert job["artifact"]["type"] == "reward_model"
    metrics = job["metrics"]
    print(f"\nreward model: {rated} ratings, {metrics['train_pairs']} train / {metrics['eval_pairs']} held-out pairs, "
          f"accuracy {metrics['eval_accuracy_before']} → {metrics['eval_accuracy']}")
    assert metrics["eval_pairs"] >= 10 and metrics["eval_accuracy"] >= 0.8
    judge = job["artifact"]["id"]
    assert judge in [m["id"] for m in client.get("/api/v1/models").json()["reward_models"]]

    # 3. Best-of-4 against best-of-1 with the same seeds, for new stories (an empty prompt, where this
    #    model writes both styles): the judge's favourite style is chosen far more often
    seeds = range(300, 324)
    body = {"prompt": "", "max_new_tokens": 8, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "model": model}
    one = [client.post("/api/v1/text/generate", json={**body, "seed": s}).json()["outputs"][0] for s in seeds]
    four = []
    for s in seeds:
        r = client.post("/api/v1/text/generate", json={**body, "seed": s, "best_of": 4, "reward_model": judge})
        assert r.status_code == 200, r.text
        outs = r.json()["outputs"]
        assert len(outs) == 4 and [o["score"] for o in outs] == sorted((o["score"] for o in outs), reverse=True)
        four.append(outs[0])
    print(f"cat share: best-of-1 {share(one, 'cat'):.0%} → best-of-4 {share(four, 'cat'):.0%}")
    assert share(four, "cat") >= share(one, "cat") + 0.2
    assert client.post("/api/v1/text/generate", json={**body, "best_of": 4}).status_code == 422  # no judge
