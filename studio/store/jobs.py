"""Queries of the `jobs` table (its one owner): training jobs, their status and progress; each has
a run folder `runs/<id>/`. Rows come back as `sqlite3.Row`; `params` and `metrics` are JSON text."""

from __future__ import annotations

from studio.store.db import Store


def active_using(store: Store, adapter_id: str) -> list[str]:
    """Queued or running jobs that start from this adapter or trained model (as their base model or
    anywhere in their params)."""
    rows = store.query(
        "SELECT id FROM jobs WHERE status IN ('queued', 'running') AND (base_model = ? OR params LIKE ?)",
        (adapter_id, f'%"{adapter_id}"%'),
    )
    return [r["id"] for r in rows]


def statuses(store: Store) -> dict[str, str]:
    """job id → status, for every job."""
    return {r["id"]: r["status"] for r in store.query("SELECT id, status FROM jobs")}
