"""Queries of the `settings` table (its one owner): admin settings kept across restarts, one JSON
value per key."""

from __future__ import annotations

import json
from typing import Any

from studio.store.db import Store, utcnow


def all_(store: Store) -> dict[str, Any]:
    """key → decoded value."""
    return {r["key"]: json.loads(r["value"]) for r in store.query("SELECT key, value FROM settings")}


def put(store: Store, key: str, value: Any, user: str | None) -> None:
    with store.transaction() as c:
        c.execute(
            "INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
            "updated_by = excluded.updated_by",
            (key, json.dumps(value), utcnow(), user),
        )
