"""Blind A/B comparisons: two versions answer the same prompt with the same seed; people vote;
a Bradley–Terry model ranks the versions (ties count half) with bootstrap confidence intervals.

Blindness is this service's rule, not a door's: it decides at random which version is shown as
`a`, and an arena output says which version made it only once its comparison is voted (the vote's
answer reveals both; `OutputService.get` hides the version of an arena output until then)."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from studio.services.auth import User
from studio.services.errors import Conflict, Invalid, NotFound
from studio.services.limits import Admission
from studio.services.outputs import OutputService
from studio.services.text import TextGenerateParams, TextService
from studio.services.versions import parse_version, version_label
from studio.store import Store, new_id, utcnow

WINNERS = ("a", "b", "tie", "both_bad")


class Side(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    adapter: str | None = None


class CompareParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field("text", pattern="^text$")
    prompt: str = Field(..., min_length=1, max_length=20_000)
    a: Side
    b: Side
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    max_new_tokens: int = Field(64, ge=1, le=1024)


def bradley_terry(pairs: list[tuple[str, str, float]], iters: int = 200) -> dict[str, float]:
    """Scores from (i, j, wins of i over j in [0, 1]) with the MM algorithm; geometric mean 1.
    A tiny symmetric prior (one half-win each way against a virtual opponent) keeps unbeaten or
    winless versions finite."""
    items = sorted({p for i, j, _ in pairs for p in (i, j)})
    if not items:
        return {}
    idx = {name: k for k, name in enumerate(items)}
    n = len(items)
    wins = np.full(n, 0.5)  # prior
    games = np.zeros((n, n))
    for i, j, w in pairs:
        a, b = idx[i], idx[j]
        wins[a] += w
        wins[b] += 1 - w
        games[a, b] += 1
        games[b, a] += 1
    p = np.ones(n)
    for _ in range(iters):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1) + 1.0 / (p + 1.0)  # + virtual opponent
        p = wins / denom
        p /= np.exp(np.log(p).mean())
    return {name: float(np.log(p[idx[name]])) for name in items}


class ArenaService:
    def __init__(self, store: Store, outputs: OutputService, text: TextService, admission: Admission):
        self.store = store
        self.outputs = outputs
        self.text = text
        self.admission = admission
        self._random = random.SystemRandom()  # which side is shown first: nobody can predict it

    def compare(self, params: CompareParams, *, user: User) -> dict:
        # 1. One admission for the pair: the caller's limits, then a fair turn
        with self.admission.admit(user, params.kind, {"max_new_tokens": params.max_new_tokens}):
            # 2. Two different versions, checked before anything runs
            sides = [params.a, params.b]
            labels = []
            for side in sides:
                spec, adapter_row = self.text.resolve(side.model, side.adapter)
                labels.append(version_label(spec.id, adapter_row["id"] if adapter_row is not None else None))
            if labels[0] == labels[1]:
                raise Invalid("a and b are the same version; pick two different models or adapters.")
            # 3. The service, not the page, decides the order
            if self._random.random() < 0.5:
                sides.reverse()
            seed = params.seed if params.seed is not None else self._random.randrange(2**31)
            comparison_id = new_id("cmp_")
            ids = []
            for side in sides:
                gen = self.text.generate_admitted(
                    TextGenerateParams(prompt=params.prompt, model=side.model, adapter=side.adapter,
                                       max_new_tokens=params.max_new_tokens, seed=seed),
                    user=user, output_params={"arena": comparison_id},
                )
                ids.append(gen["outputs"][0]["id"])
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO comparisons (id, kind, prompt, a_output_id, b_output_id, user, created_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (comparison_id, params.kind, params.prompt, ids[0], ids[1], user.name, utcnow()),
            )
        return {"id": comparison_id, "seed": seed, "a": self.outputs.get(ids[0], user=user.name),
                "b": self.outputs.get(ids[1], user=user.name)}

    def _row(self, comparison_id: str):
        row = self.store.query_one("SELECT * FROM comparisons WHERE id = ?", (comparison_id,))
        if row is None:
            raise NotFound(f"No comparison with id '{comparison_id}'.")
        return row

    def vote(self, comparison_id: str, winner: str, *, user: str) -> dict:
        if winner not in WINNERS:
            raise Invalid(f"winner must be one of {', '.join(WINNERS)}.")
        self._row(comparison_id)
        with self.store.transaction() as c:
            cur = c.execute("UPDATE comparisons SET winner = ?, voted_at = ? WHERE id = ? AND winner IS NULL",
                            (winner, utcnow(), comparison_id))
            if cur.rowcount == 0:
                raise Conflict("This comparison already has a vote; start a new comparison.")
        row = self._row(comparison_id)
        a, b = self.outputs.get(row["a_output_id"]), self.outputs.get(row["b_output_id"])
        return {"id": comparison_id, "winner": winner,
                "a": {"model": a["model"], "adapter": a["adapter"]},
                "b": {"model": b["model"], "adapter": b["adapter"]}}

    def matches(self, kind: str = "text") -> list[tuple[str, str, str]]:
        rows = self.store.query(
            "SELECT c.winner, a.model AS am, a.adapter AS aa, b.model AS bm, b.adapter AS ba FROM comparisons c "
            "JOIN outputs a ON a.id = c.a_output_id JOIN outputs b ON b.id = c.b_output_id "
            "WHERE c.kind = ? AND c.winner IS NOT NULL",
            (kind,),
        )
        return [(version_label(r["am"], r["aa"]), version_label(r["bm"], r["ba"]), r["winner"]) for r in rows]

    def leaderboard(self, kind: str = "text", *, bootstrap: int = 200, seed: int = 0) -> list[dict]:
        return leaderboard_from_matches(self.matches(kind), bootstrap=bootstrap, seed=seed)


def leaderboard_from_matches(matches: list[tuple[str, str, str]], *, bootstrap: int = 200,
                             seed: int = 0) -> list[dict]:
    """Rows sorted by Bradley–Terry score; `both_bad` votes count as games no one won (ignored)."""
    scored = [(a, b, {"a": 1.0, "b": 0.0, "tie": 0.5}[w]) for a, b, w in matches if w != "both_bad"]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"wins": 0, "losses": 0, "ties": 0, "both_bad": 0})
    for a, b, w in matches:
        if w == "a":
            counts[a]["wins"] += 1
            counts[b]["losses"] += 1
        elif w == "b":
            counts[b]["wins"] += 1
            counts[a]["losses"] += 1
        else:
            key = "ties" if w == "tie" else "both_bad"
            counts[a][key] += 1
            counts[b][key] += 1
    scores = bradley_terry(scored)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = defaultdict(list)
    if scored and bootstrap:
        for _ in range(bootstrap):
            picks = rng.integers(0, len(scored), len(scored))
            for name, s in bradley_terry([scored[k] for k in picks], iters=100).items():
                samples[name].append(s)
    rows = []
    for name in sorted(counts, key=lambda n: -scores.get(n, float("-inf"))):
        boot = samples.get(name)
        lo, hi = (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))) if boot else (None, None)
        model, adapter = parse_version(name)
        rows.append({"version": name, "model": model, "adapter": adapter,
                     "score": round(scores.get(name, 0.0), 4), "ci_low": lo, "ci_high": hi,
                     "games": sum(counts[name].values()), **counts[name]})
    return rows
