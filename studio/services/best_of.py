"""Best-of-n ("model integration"): n candidates — from one version, or from several in turn — are
generated and stored, a reward model scores each, and the answer lists them best first with every
candidate's score. Called by TextService.generate under the request's admission."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from studio.services.auth import User
from studio.services.errors import Invalid

if TYPE_CHECKING:
    from studio.services.text import TextGenerateParams, TextService


def best_of_n(text: TextService, judge: Any, params: TextGenerateParams, *, user: User, **options) -> dict:
    if params.num_outputs != 1:
        raise Invalid("num_outputs: with best_of, leave it at 1 — every candidate comes back, best first.")
    if options.get("on_text") is not None or params.logprobs is not None:
        raise Invalid("best_of answers once all candidates are judged: it cannot stream or report logprobs.")
    versions = [(v.model, v.adapter) for v in params.ensemble] if params.ensemble else [(params.model, params.adapter)]
    # 1. Candidates: the versions take turns, each generating its share in one batched call
    shares = [params.best_of // len(versions) + (i < params.best_of % len(versions)) for i in range(len(versions))]
    results = []
    for (model, adapter), share in zip(versions, shares, strict=True):
        if share:
            one = params.model_copy(update={"model": model, "adapter": adapter, "num_outputs": share,
                                            "best_of": None, "reward_model": None, "ensemble": None})
            results.append(text.generate_admitted(one, user=user, **options))
    candidates = [(o, r["model"], r["adapter"]) for r in results for o in r["outputs"]]
    # 2. Judge them all, best first
    scores = judge.score(params.prompt, [o["text"] for o, _, _ in candidates])
    ranked = sorted(zip(scores, candidates, strict=True), key=lambda item: -item[0])
    outputs = [{**o, "score": round(score, 4), "model": model, "adapter": adapter}
               for score, (o, model, adapter) in ranked]
    best = ranked[0][1]
    return {
        "outputs": outputs, "model": best[1], "adapter": best[2], "reward_model": params.reward_model,
        "elapsed_s": round(sum(r["elapsed_s"] for r in results), 4),
        "warnings": [w for r in results for w in r["warnings"]], "stopped": any(r["stopped"] for r in results),
        "starter": any(r["starter"] for r in results),
        "random_weights": any(r["random_weights"] for r in results), "prompt_tokens": results[0]["prompt_tokens"],
    }
