"""Queries of the `api_tokens` table (its one owner): tokens admins create for scripts. Only a
token's hash is stored; a revoked token keeps its row (revoked_at set) for the list."""

from __future__ import annotations

from studio.store.db import Store, utcnow


def create(store: Store, *, id: str, user: str, token_hash: str, label: str, created_at: str) -> None:
    with store.transaction() as c:
        c.execute(
            "INSERT INTO api_tokens (id, user, token_hash, label, created_at) VALUES (?,?,?,?,?)",
            (id, user, token_hash, label, created_at),
        )


def all_(store: Store) -> list[dict]:
    """id, user, label, created_at, revoked_at of every token, newest first (no hashes)."""
    rows = store.query("SELECT id, user, label, created_at, revoked_at FROM api_tokens ORDER BY created_at DESC")
    return [dict(r) for r in rows]


def revoke(store: Store, token_id: str) -> bool:
    """False when no active token has this id."""
    with store.transaction() as c:
        return c.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (utcnow(), token_id)
        ).rowcount > 0


def user_for(store: Store, token_hash: str) -> str | None:
    """The user of an active token with this hash."""
    row = store.query_one("SELECT user FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL", (token_hash,))
    return row["user"] if row else None
