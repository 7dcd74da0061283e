"""Queries of the `experiments`, `experiment_outputs` and `audit` tables (their one owner)."""

from __future__ import annotations

import json
from typing import Any

from studio.store.db import Store, new_id, row_to_dict, utcnow

JSON_FIELDS = ("arms", "weights", "decision")


def create(store: Store, *, name: str, kind: str, arms: list[dict], weights: list[float], min_samples: int,
           auto_promote: bool, user: str | None) -> str:
    """Insert a running experiment; IntegrityError when one already runs for the kind."""
    experiment_id = new_id("exp_")
    with store.transaction() as c:
        c.execute(
            "INSERT INTO experiments (id, name, kind, arms, weights, min_samples, auto_promote, status, "
            "created_by, created_at) VALUES (?,?,?,?,?,?,?, 'running', ?, ?)",
            (experiment_id, name, kind, json.dumps(arms), json.dumps(weights), min_samples, int(auto_promote),
             user, utcnow()),
        )
    return experiment_id


def get(store: Store, experiment_id: str) -> dict[str, Any] | None:
    return row_to_dict(store.query_one("SELECT * FROM experiments WHERE id = ?", (experiment_id,)), JSON_FIELDS)


def all_(store: Store) -> list[dict[str, Any]]:
    return [row_to_dict(r, JSON_FIELDS) for r in store.query("SELECT * FROM experiments ORDER BY created_at DESC")]


def running(store: Store, kind: str) -> dict[str, Any] | None:
    return row_to_dict(store.query_one("SELECT * FROM experiments WHERE kind = ? AND status = 'running'", (kind,)),
                       JSON_FIELDS)


def end(store: Store, experiment_id: str, status: str, decision: dict) -> bool:
    """Move a running experiment to `concluded` or `stopped`; False when it was not running."""
    with store.transaction() as c:
        return c.execute(
            "UPDATE experiments SET status = ?, decision = ?, ended_at = ? WHERE id = ? AND status = 'running'",
            (status, json.dumps(decision), utcnow(), experiment_id),
        ).rowcount > 0


def mark_promoted(store: Store, experiment_id: str, *, user: str | None, evidence: dict) -> None:
    """Promoted flag and its audit row, in one transaction."""
    with store.transaction() as c:
        c.execute("UPDATE experiments SET promoted = 1 WHERE id = ?", (experiment_id,))
        _audit(c, user, "experiment.promote", experiment_id, evidence)


def record_outputs(store: Store, experiment_id: str, arm: int, output_ids: list[str]) -> None:
    with store.transaction() as c:
        c.executemany("INSERT INTO experiment_outputs (output_id, experiment_id, arm) VALUES (?,?,?)",
                      [(o, experiment_id, arm) for o in output_ids])


def arm_of(store: Store, output_id: str) -> tuple[str, int] | None:
    row = store.query_one("SELECT experiment_id, arm FROM experiment_outputs WHERE output_id = ?", (output_id,))
    return (row["experiment_id"], row["arm"]) if row else None


def tallies(store: Store, experiment_id: str) -> dict[int, tuple[int, int]]:
    """arm → (rated outputs, thumbs up). An output counts once: its newest rating's majority is not
    needed here, as each rating row is one person's thumb on one output."""
    rows = store.query(
        "SELECT e.arm, COUNT(r.id) AS n, COUNT(CASE WHEN r.rating = 'up' THEN 1 END) AS up FROM experiment_outputs e "
        "JOIN ratings r ON r.output_id = e.output_id WHERE e.experiment_id = ? GROUP BY e.arm",
        (experiment_id,),
    )
    return {r["arm"]: (r["n"], r["up"]) for r in rows}


def history(store: Store, experiment_id: str) -> list[tuple[int, str]]:
    """(arm, rating) in the order the ratings were given, for the approval-over-ratings plot."""
    rows = store.query(
        "SELECT e.arm, r.rating FROM experiment_outputs e JOIN ratings r ON r.output_id = e.output_id "
        "WHERE e.experiment_id = ? ORDER BY r.updated_at",
        (experiment_id,),
    )
    return [(r["arm"], r["rating"]) for r in rows]


def audit(store: Store, user: str | None, action: str, subject: str, detail: dict) -> None:
    with store.transaction() as c:
        _audit(c, user, action, subject, detail)


def audit_rows(store: Store, subject: str) -> list[dict[str, Any]]:
    return [row_to_dict(r, ("detail",)) for r in
            store.query("SELECT * FROM audit WHERE subject = ? ORDER BY at", (subject,))]


def _audit(c, user: str | None, action: str, subject: str, detail: dict) -> None:
    c.execute("INSERT INTO audit (id, at, user, action, subject, detail) VALUES (?,?,?,?,?,?)",
              (new_id("aud_"), utcnow(), user, action, subject, json.dumps(detail)))
