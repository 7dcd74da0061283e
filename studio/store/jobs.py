"""Queries of the `jobs` table (its one owner): training jobs, their status and progress; each has
a run folder `runs/<id>/`. Rows come back as `sqlite3.Row`; `params` and `metrics` are JSON text.

A job's final status and the `adapters` row of what it made are one write (`settle`)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from studio.store import adapters
from studio.store.db import Store, utcnow


def create(store: Store, job_id: str, *, kind: str, dataset_id: str | None, base_model: str | None,
           params: dict[str, Any], total_steps: int) -> None:
    """A queued job; sqlite3.IntegrityError when `dataset_id` names no dataset."""
    now = utcnow()
    with store.transaction() as c:
        c.execute(
            "INSERT INTO jobs (id, kind, dataset_id, base_model, params, status, total_steps, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
            (job_id, kind, dataset_id, base_model, json.dumps(params), total_steps, now, now),
        )


def get(store: Store, job_id: str) -> sqlite3.Row | None:
    return store.query_one("SELECT * FROM jobs WHERE id = ?", (job_id,))


def all_(store: Store, limit: int | None = None) -> list[sqlite3.Row]:
    """Newest first; the newest `limit` when given."""
    sql = "SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC"
    return store.query(sql + " LIMIT ?", (int(limit),)) if limit else store.query(sql)


def running(store: Store) -> list[sqlite3.Row]:
    return store.query("SELECT * FROM jobs WHERE status = 'running'")


def next_queued(store: Store, limit: int) -> list[sqlite3.Row]:
    """The `limit` queued jobs that have waited longest."""
    return store.query("SELECT * FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT ?", (limit,))


def requeue(store: Store, job_id: str) -> None:
    """Back in the queue (a resume): no error, no process, no owner."""
    with store.transaction() as c:
        c.execute("UPDATE jobs SET status = 'queued', error = NULL, pid = NULL, owner = NULL, lease_until = NULL, "
                  "cancel_requested = 0, updated_at = ? WHERE id = ?", (utcnow(), job_id))


def claim(store: Store, owner: str, lease_until: str) -> sqlite3.Row | None:
    """Take the queued job that has waited longest for `owner`, exactly once among replicas: it is
    `running` (no process yet) with a lease until `lease_until`. None when the queue is empty.
    PostgreSQL locks the row and skips rows another replica is taking; SQLite's write transaction
    is one at a time already."""
    lock = " FOR UPDATE SKIP LOCKED" if store.dialect == "postgresql" else ""
    with store.transaction() as c:
        row = c.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1" + lock,
                        ()).fetchone()
        if row is None:
            return None
        taken = c.execute("UPDATE jobs SET status = 'running', owner = ?, lease_until = ?, pid = NULL, error = NULL, "
                          "cancel_requested = 0, updated_at = ? WHERE id = ? AND status = 'queued'",
                          (owner, lease_until, utcnow(), row["id"])).rowcount
        if taken != 1:  # another replica got there first
            return None
        return c.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()


def mark_running(store: Store, job_id: str, pid: int) -> None:
    """Started: the pid is its process group's (on the owner's host)."""
    with store.transaction() as c:
        c.execute("UPDATE jobs SET status = 'running', pid = ?, error = NULL, updated_at = ? WHERE id = ?",
                  (pid, utcnow(), job_id))


def renew(store: Store, owner: str, lease_until: str) -> set[str]:
    """Extend the leases of everything `owner` runs; the ids it still owns (a job missing from them
    was settled by another replica while this one's lease had lapsed)."""
    with store.transaction() as c:
        rows = c.execute("UPDATE jobs SET lease_until = ? WHERE owner = ? AND status = 'running' RETURNING id",
                         (lease_until, owner)).fetchall()
    return {r["id"] for r in rows}


def take_over(store: Store, job_id: str, owner: str, lease_until: str, *, was: str | None, now: str | None) -> bool:
    """Become the owner of a running job that `was`'s (the owner read before), whose lease lapsed
    before `now` (any lease when `now` is None: that owner is known to be gone), to settle it;
    False when it moved on or another replica took it first."""
    lapsed = " AND (lease_until IS NULL OR lease_until < ?)" if now else ""
    with store.transaction() as c:
        return c.execute(
            "UPDATE jobs SET owner = ?, lease_until = ? WHERE id = ? AND status = 'running' AND owner IS ?" + lapsed,
            (owner, lease_until, job_id, was, *((now,) if now else ())),
        ).rowcount == 1


def request_cancel(store: Store, job_id: str) -> bool:
    """Ask the replica running the job to cancel it; False when it no longer runs."""
    with store.transaction() as c:
        return c.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'",
                         (job_id,)).rowcount == 1


def cancel_requested(store: Store, owner: str) -> set[str]:
    """The jobs `owner` runs that someone asked (on any replica) to cancel."""
    rows = store.query("SELECT id FROM jobs WHERE owner = ? AND status = 'running' AND cancel_requested = 1",
                       (owner,))
    return {r["id"] for r in rows}


def record_progress(store: Store, job_id: str, *, step: int, total_steps: int, progress: float,
                    metrics: dict[str, Any]) -> None:
    with store.transaction() as c:
        c.execute(
            "UPDATE jobs SET step = ?, total_steps = ?, progress = ?, metrics = ?, updated_at = ? WHERE id = ?",
            (step, total_steps, progress, json.dumps(metrics), utcnow(), job_id),
        )


def settle(store: Store, job_id: str, *, status: str, metrics: dict[str, Any], error: str | None,
           progress: float | None, artifact: dict[str, Any] | None, owner: str | None = None) -> bool:
    """A final status (progress kept unless given), and the `adapters` row `artifact` (the keys of
    `adapters.add`) registered in the same transaction. With `owner`, only while that replica still
    owns the running job (another may have settled it when this one's lease lapsed): False, and
    nothing written, otherwise."""
    mine = " AND owner = ? AND status = 'running'" if owner is not None else ""
    with store.transaction() as c:
        updated = c.execute(
            "UPDATE jobs SET status = ?, progress = COALESCE(?, progress), metrics = ?, error = ?,"
            " artifact_type = ?, artifact_id = ?, pid = NULL, lease_until = NULL, cancel_requested = 0,"
            " updated_at = ? WHERE id = ?" + mine,
            (status, progress, json.dumps(metrics), error, artifact and artifact["type"],
             artifact and artifact["id"], utcnow(), job_id, *((owner,) if owner is not None else ())),
        ).rowcount  # fmt: skip
        if updated != 1:
            return False
        if artifact is not None:
            adapters.add(c, **artifact)
    return True


def set_status(store: Store, job_id: str, status: str, *, from_status: str) -> bool:
    """Move a job from `from_status` to `status` (no process); False (nothing done) when it has moved on."""
    with store.transaction() as c:
        return c.execute("UPDATE jobs SET status = ?, pid = NULL, lease_until = NULL, cancel_requested = 0,"
                         " updated_at = ? WHERE id = ? AND status = ?",
                         (status, utcnow(), job_id, from_status)).rowcount == 1


def active_using(store: Store, adapter_id: str) -> list[str]:
    """Queued or running jobs that start from this adapter or trained model (as their base model or
    anywhere in their params)."""
    rows = store.query(
        "SELECT id FROM jobs WHERE status IN ('queued', 'running') AND (base_model = ? OR params LIKE ?)",
        (adapter_id, f'%"{adapter_id}"%'),
    )
    return [r["id"] for r in rows]


def completed_of_kinds(store: Store, kinds: tuple[str, ...]) -> set[str]:
    """Ids of the completed jobs of these kinds."""
    marks = ", ".join("?" * len(kinds))
    return {r["id"] for r in store.query(f"SELECT id FROM jobs WHERE status = 'completed' AND kind IN ({marks})",
                                         tuple(kinds))}


def statuses(store: Store) -> dict[str, str]:
    """job id → status, for every job."""
    return {r["id"]: r["status"] for r in store.query("SELECT id, status FROM jobs")}
