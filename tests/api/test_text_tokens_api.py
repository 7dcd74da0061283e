"""Token probabilities (`logprobs: k` → each output's `tokens`) and POST /text/perplexity, over HTTP."""

from __future__ import annotations

import math

from engines.starter import STARTER_TEXT
from tests.api.test_adapter_mix_api import import_random


def gen(client, **body) -> dict:
    r = client.post("/api/v1/text/generate", json={"prompt": "Once upon a time", "max_new_tokens": 8, **body})
    assert r.status_code == 200, r.text
    return r.json()


def score(client, **body):
    return client.post("/api/v1/text/perplexity", json=body)


def test_logprobs_give_k_alternatives_from_the_models_own_distribution(api_client):
    sampled = gen(api_client, logprobs=5, num_outputs=2, seed=3, temperature=1.5)
    for out in sampled["outputs"]:
        tokens = out["tokens"]
        assert out["logprobs"] == tokens  # the older name stays, the same list
        assert len(tokens) == out["new_tokens"] and "".join(t["token"] for t in tokens) == out["text"]
        for t in tokens:
            probs = [math.exp(a["logprob"]) for a in t["top"]]
            assert len(probs) == 5 and probs == sorted(probs, reverse=True)
            assert sum(probs) <= 1 + 1e-6 and t["logprob"] <= t["top"][0]["logprob"] + 1e-6

    # Greedy: the chosen token is always the model's most likely one.
    greedy = gen(api_client, logprobs=3, temperature=0)["outputs"][0]["tokens"]
    assert all(t["token"] == t["top"][0]["token"] and abs(t["logprob"] - t["top"][0]["logprob"]) < 1e-5
               for t in greedy)
    # The model's distribution, not the sampler's: the first position reads the same at any temperature.
    cool = gen(api_client, logprobs=3, temperature=0.3, seed=3)["outputs"][0]["tokens"][0]["top"]
    assert [a["token"] for a in cool] == [a["token"] for a in greedy[0]["top"]]
    assert all(abs(a["logprob"] - b["logprob"]) < 1e-5 for a, b in zip(cool, greedy[0]["top"], strict=True))

    # An output cut at a stop string reports the tokens of its text only.
    plain = gen(api_client, seed=5, max_new_tokens=20, logprobs=1)["outputs"][0]
    cut = gen(api_client, seed=5, max_new_tokens=20, logprobs=1, stop=[plain["text"][6:8]])["outputs"][0]
    joined = "".join(t["token"] for t in cut["tokens"])
    assert joined.startswith(cut["text"]) and len(cut["tokens"]) < len(plain["tokens"])


def test_perplexity_is_deterministic_and_refuses_bad_input_clearly(api_client):
    first = score(api_client, text="The cat sat on the mat.")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model"] == STARTER_TEXT and body["adapter"] is None
    assert body["tokens"] >= 2 and body["scored_tokens"] == body["tokens"] - 1
    assert body["perplexity"] > 1 and math.isclose(math.exp(-body["mean_logprob"]), body["perplexity"], rel_tol=1e-4)
    assert score(api_client, text="The cat sat on the mat.").json()["perplexity"] == body["perplexity"]

    for bad, words in (({"text": ""}, "text"), ({"text": "   "}, "empty"), ({"text": "a"}, "two words"),
                       ({"text": "the " * 9000}, "too long"), ({"text": "hi", "extra": 1}, "extra")):
        r = score(api_client, **bad)
        assert r.status_code == 422 and words in r.json()["error"]["message"], r.text
    r = score(api_client, text="hello there", model="gpt-99")
    assert r.status_code == 404 and STARTER_TEXT in r.json()["error"]["message"]
    assert score(api_client, text="hello there", adapter="ad_0000000000000000").status_code == 404


def test_trained_starter_finds_a_sentence_likelier_than_its_words_shuffled(api_client):
    sentence = "Once upon a time there was a little dog. He liked to play in the park with his friends."
    shuffled = "park friends a the with dog. upon his play there He in liked Once to little time was a"
    a, b = (score(api_client, text=t, model="starter/gpt2-stories") for t in (sentence, shuffled))
    assert a.status_code == b.status_code == 200, a.text
    assert a.json()["perplexity"] * 5 < b.json()["perplexity"]


def test_an_adapter_changes_the_reported_distribution_and_the_perplexity(api_client, tmp_path):
    client = api_client
    client.studio.models.registry.location(client.studio.models.resolve(STARTER_TEXT, "text"))
    adapter = import_random(client, tmp_path, "noisy", 4, 1)
    base = gen(client, logprobs=4, temperature=0, num_outputs=2)["outputs"]
    tuned = gen(client, logprobs=4, temperature=0, num_outputs=2, adapter=adapter)
    assert tuned["adapter"] == adapter
    for out in tuned["outputs"]:
        assert all(len(t["top"]) == 4 and t["token"] == t["top"][0]["token"] for t in out["tokens"])
    assert tuned["outputs"][0]["tokens"][0]["top"] != base[0]["tokens"][0]["top"]
    text = "The cat sat on the mat."
    plain, with_adapter = (score(client, text=text, **extra).json() for extra in ({}, {"adapter": adapter}))
    assert with_adapter["adapter"] == adapter and with_adapter["perplexity"] != plain["perplexity"]
