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
    """Back in the queue (a resume): no error, no process."""
    with store.transaction() as c:
        c.execute("UPDATE jobs SET status = 'queued', error = NULL, pid = NULL, updated_at = ? WHERE id = ?",
                  (utcnow(), job_id))


def mark_running(store: Store, job_id: str, pid: int) -> None:
    """Started: the pid is its process group's."""
    with store.transaction() as c:
        c.execute("UPDATE jobs SET status = 'running', pid = ?, error = NULL, updated_at = ? WHERE id = ?",
                  (pid, utcnow(), job_id))


def record_progress(store: Store, job_id: str, *, step: int, total_steps: int, progress: float,
                    metrics: dict[str, Any]) -> None:
    with store.transaction() as c:
        c.execute(
            "UPDATE jobs SET step = ?, total_steps = ?, progress = ?, metrics = ?, updated_at = ? WHERE id = ?",
            (step, total_steps, progress, json.dumps(metrics), utcnow(), job_id),
        )


def settle(store: Store, job_id: str, *, status: str, metrics: dict[str, Any], error: str | None,
           progress: float | None, artifact: dict[str, Any] | None) -> None:
    """A final status (progress kept unless given), and the `adapters` row `artifact` (the keys of
    `adapters.add`) registered in the same transaction."""
    with store.transaction() as c:
        if artifact is not None:
            adapters.add(c, **artifact)
        c.execute(
            "UPDATE jobs SET status = ?, progress = COALESCE(?, progress), metrics = ?, error = ?,"
            " artifact_type = ?, artifact_id = ?, pid = NULL, updated_at = ? WHERE id = ?",
            (status, progress, json.dumps(metrics), error, artifact and artifact["type"],
             artifact and artifact["id"], utcnow(), job_id),
        )  # fmt: skip


def set_status(store: Store, job_id: str, status: str, *, from_status: str) -> None:
    """Move a job from `from_status` to `status` (no process); nothing when it has moved on."""
    with store.transaction() as c:
        c.execute("UPDATE jobs SET status = ?, pid = NULL, updated_at = ? WHERE id = ? AND status = ?",
                  (status, utcnow(), job_id, from_status))


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
