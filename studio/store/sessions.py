"""Queries of the `sessions` table (its one owner). Timestamps are `utcnow()` strings, which
compare in time order as text."""

from __future__ import annotations

from studio.store.db import Store, new_id


def create(store: Store, token_hash: str, user: str, *, created_at: str, expires_at: str) -> str:
    session_id = new_id("ses_")
    with store.transaction() as c:
        c.execute(
            "INSERT INTO sessions (id, token_hash, user, created_at, expires_at) VALUES (?,?,?,?,?)",
            (session_id, token_hash, user, created_at, expires_at),
        )
    return session_id


def user_for(store: Store, token_hash: str, *, now: str) -> str | None:
    """The user of a session that exists and has not expired."""
    row = store.query_one("SELECT user FROM sessions WHERE token_hash = ? AND expires_at > ?", (token_hash, now))
    return row["user"] if row else None


def delete(store: Store, token_hash: str) -> bool:
    with store.transaction() as c:
        return c.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,)).rowcount > 0


def keep_only_users(store: Store, users: set[str]) -> int:
    """Delete the sessions of everyone not in `users` (accounts removed since they signed in)."""
    marks = ",".join("?" * len(users))
    keep = f" WHERE user NOT IN ({marks})" if users else ""  # `IN ()` is SQLite's alone
    with store.transaction() as c:
        return c.execute("DELETE FROM sessions" + keep, tuple(users)).rowcount


def sweep_expired(store: Store, *, now: str) -> int:
    with store.transaction() as c:
        return c.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,)).rowcount


def count(store: Store) -> int:
    return int(store.query_one("SELECT COUNT(*) FROM sessions")[0])
