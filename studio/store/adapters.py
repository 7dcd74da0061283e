"""Queries of the `adapters` table (its one owner): trained and imported versions — text adapters,
trained text models, image LoRAs, GANs, reward models — with their folder under `models/`.
Rows come back as `sqlite3.Row`; `meta` is JSON text."""

from __future__ import annotations

import sqlite3

from studio.store.db import Store


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
    order = "rowid" if oldest_first else "created_at DESC, rowid DESC"
    return store.query(f"SELECT * FROM adapters WHERE type IN ({marks}) ORDER BY {order}", types)


def ids_of_type(store: Store, type_: str) -> list[str]:
    """The ids of one type, oldest first (what an error message offers instead)."""
    return [r["id"] for r in store.query("SELECT id FROM adapters WHERE type = ? ORDER BY rowid", (type_,))]


def paths(store: Store) -> list[str]:
    """Every row's folder, relative to the data dir."""
    return [r["path"] for r in store.query("SELECT path FROM adapters")]
