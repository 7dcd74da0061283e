"""Queries of the `jobs` table (its one owner): training jobs, their status and progress; each has
a run folder `runs/<id>/`. Rows come back as `sqlite3.Row`; `params` and `metrics` are JSON text."""

from __future__ import annotations

from studio.store.db import Store


def statuses(store: Store) -> dict[str, str]:
    """job id → status, for every job."""
    return {r["id"]: r["status"] for r in store.query("SELECT id, status FROM jobs")}
