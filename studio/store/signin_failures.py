"""Queries of the `signin_failures` table (its one owner): failed sign-ins per account and per
client address, kept in the database when several replicas share it, so that spreading guesses
over replicas gains nothing (studio/services/signin_throttle.py)."""

from __future__ import annotations

from studio.store.db import Store


def get(store: Store, scope: str, key: str) -> tuple[int, float] | None:
    """(failures, time of the latest) or None."""
    row = store.query_one("SELECT count, last FROM signin_failures WHERE scope = ? AND key = ?", (scope, key))
    return (int(row["count"]), float(row["last"])) if row else None


def add(store: Store, scope: str, key: str, now: float, forget_s: float, max_entries: int) -> None:
    """One more failure (the count starts again after `forget_s` without one); rows forgotten, and
    the least recent beyond `max_entries` per scope, are removed."""
    with store.transaction() as c:
        c.execute(
            "INSERT INTO signin_failures (scope, key, count, last) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (scope, key) DO UPDATE SET last = excluded.last, count = CASE "
            "WHEN excluded.last - signin_failures.last > ? THEN 1 ELSE signin_failures.count + 1 END",
            (scope, key, now, forget_s),
        )
        c.execute("DELETE FROM signin_failures WHERE scope = ? AND last < ?", (scope, now - forget_s))
        n = c.execute("SELECT COUNT(*) AS n FROM signin_failures WHERE scope = ?", (scope,)).fetchone()["n"]
        if n > max_entries:
            c.execute(
                "DELETE FROM signin_failures WHERE scope = ? AND key NOT IN "
                "(SELECT key FROM signin_failures WHERE scope = ? ORDER BY last DESC LIMIT ?)",
                (scope, scope, max_entries),
            )


def clear(store: Store, scope: str, key: str) -> None:
    with store.transaction() as c:
        c.execute("DELETE FROM signin_failures WHERE scope = ? AND key = ?", (scope, key))


def count(store: Store) -> int:
    return int(store.query_one("SELECT COUNT(*) AS n FROM signin_failures")["n"])
