"""Queries of the `datasets` table (its one owner): one row per stored upload, written after its
folder is in place. Rows come back as dicts with `stats` and `warnings` decoded from JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from studio.store.db import Store, row_to_dict

_COLUMNS = "id, name, kind, num_items, stats, warnings, created_at"
_JSON = ("stats", "warnings")


def insert(store: Store, *, id: str, name: str, kind: str, num_items: int, stats: dict, warnings: list,
           created_at: str) -> None:
    with store.transaction() as c:
        c.execute(
            f"INSERT INTO datasets ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (id, name, kind, num_items, json.dumps(stats), json.dumps(warnings), created_at),
        )


def all_(store: Store) -> list[dict[str, Any]]:
    """Newest first."""
    return [row_to_dict(r, _JSON) for r in store.query(f"SELECT {_COLUMNS} FROM datasets ORDER BY created_at DESC, id")]


def get(store: Store, dataset_id: str) -> dict[str, Any] | None:
    return row_to_dict(store.query_one(f"SELECT {_COLUMNS} FROM datasets WHERE id = ?", (dataset_id,)), _JSON)


def ids(store: Store) -> set[str]:
    return {r["id"] for r in store.query("SELECT id FROM datasets")}


def delete_unless_in_use(store: Store, dataset_id: str, *, before_commit: Callable[[], None]) -> tuple[bool, str | None]:
    """Delete the row unless a queued or running job trains on it: (deleted, that job's id).

    `before_commit` runs inside the transaction once the row is gone (the service moves the folder
    aside there), so if it raises, the row stays. (False, None): there was no such row."""
    with store.transaction() as c:
        busy = c.execute(
            "SELECT id FROM jobs WHERE dataset_id = ? AND status IN ('queued', 'running') LIMIT 1", (dataset_id,)
        ).fetchone()
        if busy is not None:
            return False, busy["id"]
        if c.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,)).rowcount == 0:
            return False, None
        before_commit()
    return True, None
