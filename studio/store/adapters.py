"""Queries of the `adapters` table (its one owner): trained and imported versions — text adapters,
trained text models, image LoRAs, GANs, reward models — with their folder under `models/`.
Rows come back as `sqlite3.Row`; `meta` is JSON text."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from studio.store.db import Store, utcnow


def insert(store: Store, **row: Any) -> None:
    """A new row: id, name, type, base_model, job_id, path (relative to the data dir), meta (a dict),
    and created_at (default: now)."""
    with store.transaction() as c:
        add(c, **row)


def add(c: sqlite3.Connection, *, id: str, name: str, type: str, base_model: str, job_id: str | None, path: str,
        meta: dict[str, Any], created_at: str | None = None) -> None:
    """`insert` inside a caller's transaction (a job's final status and its artifact are one write)."""
    c.execute(
        "INSERT INTO adapters (id, name, type, base_model, job_id, path, meta, created_at) VALUES (?,?,?,?,?,?,?,?)",
        (id, name, type, base_model, job_id, path, json.dumps(meta), created_at or utcnow()),
    )


def rename(store: Store, adapter_id: str, name: str) -> None:
    with store.transaction() as c:
        c.execute("UPDATE adapters SET name = ? WHERE id = ?", (name, adapter_id))


def delete(store: Store, adapter_id: str) -> None:
    with store.transaction() as c:
        c.execute("DELETE FROM adapters WHERE id = ?", (adapter_id,))


def get(store: Store, adapter_id: str, *types: str) -> sqlite3.Row | None:
    """The row, if it exists and (when types are given) is one of `types`."""
    if not types:
        return store.query_one("SELECT * FROM adapters WHERE id = ?", (adapter_id,))
    marks = ", ".join("?" * len(types))
    return store.query_one(f"SELECT * FROM adapters WHERE id = ? AND type IN ({marks})", (adapter_id, *types))


def exists(store: Store, adapter_id: str) -> bool:
    return store.query_one("SELECT 1 FROM adapters WHERE id = ?", (adapter_id,)) is not None


def of_types(store: Store, *types: str, oldest_first: bool = False) -> list[sqlite3.Row]:
    """Every row of these types, newest first (or in the order they were added)."""
    marks = ", ".join("?" * len(types))
    order = "created_at, rowid" if oldest_first else "created_at DESC, rowid DESC"
    return store.query(f"SELECT * FROM adapters WHERE type IN ({marks}) ORDER BY {order}", types)


def ids_of_type(store: Store, type_: str) -> list[str]:
    """The ids of one type, oldest first (what an error message offers instead)."""
    return [r["id"] for r in store.query("SELECT id FROM adapters WHERE type = ? ORDER BY created_at, rowid", (type_,))]


def newest_made_by(store: Store, job_kind: str) -> sqlite3.Row | None:
    """id, base_model and the job's `params` (JSON text) of the newest row a job of `job_kind` made."""
    return store.query_one(
        "SELECT a.id, a.base_model, j.params FROM adapters a JOIN jobs j ON j.id = a.job_id "
        "WHERE j.kind = ? ORDER BY a.created_at DESC LIMIT 1",
        (job_kind,),
    )


def paths(store: Store) -> list[str]:
    """Every row's folder, relative to the data dir."""
    return [r["path"] for r in store.query("SELECT path FROM adapters")]


def all_versions(store: Store) -> list[dict[str, Any]]:
    """(id, name, type, base_model, job_id, created_at, meta decoded) of every row, newest first: for
    naming versions in lists."""
    rows = store.query(
        "SELECT id, name, type, base_model, job_id, created_at, meta FROM adapters ORDER BY created_at DESC, rowid DESC"
    )
    return [{**dict(r), "meta": json.loads(r["meta"] or "{}")} for r in rows]
