"""Queries of the `outputs` and `ratings` tables (their one owner): every generation, and the
thumbs people give it. Rows come back as `sqlite3.Row` (read by column name); `params` is JSON text.
Other owners read these tables in joins (experiments' tallies); only this module writes them."""

from __future__ import annotations

import json
import sqlite3

from studio.store.db import Store, new_id, utcnow

Version = tuple[str, str | None]  # (model, adapter or None): one text version


# -- outputs ---------------------------------------------------------------------------------------
def insert(store: Store, output_id: str, *, kind: str, prompt: str, params: dict, model: str, adapter: str | None,
           seed: int | None, text: str | None, file: str | None, user: str | None) -> None:
    with store.transaction() as c:
        c.execute(
            "INSERT INTO outputs (id, kind, prompt, params, model, adapter, seed, text, file, user, created_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (output_id, kind, prompt, json.dumps(params), model, adapter, seed, text, file, user, utcnow()),
        )


def get(store: Store, output_id: str) -> sqlite3.Row | None:
    return store.query_one("SELECT * FROM outputs WHERE id = ?", (output_id,))


def exists(store: Store, output_id: str) -> bool:
    return store.query_one("SELECT 1 FROM outputs WHERE id = ?", (output_id,)) is not None


def newest_ids(store: Store, *, kind: str | None = None, limit: int = 50, owner: str | None = None,
               search: str | None = None) -> list[str]:
    """Output ids, newest first: all kinds or one; only `owner`'s when given; only those whose prompt
    contains `search` (case-insensitive, taken literally) when given."""
    where, args = [], []
    if kind:
        where.append("kind = ?")
        args.append(kind)
    if owner is not None:
        where.append("user = ?")
        args.append(owner)
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("prompt LIKE ? ESCAPE '\\'")
        args.append(f"%{escaped}%")
    sql = "SELECT id FROM outputs" + (" WHERE " + " AND ".join(where) if where else "")
    rows = store.query(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit))
    return [r["id"] for r in rows]


def files(store: Store) -> set[str]:
    """The artifact paths (relative to the data dir) that some output names."""
    return {r["file"] for r in store.query("SELECT file FROM outputs WHERE file IS NOT NULL")}


# -- ratings ---------------------------------------------------------------------------------------
def rating_of(store: Store, output_id: str, user: str) -> str | None:
    """'up', 'down', or None when `user` has not rated the output."""
    row = store.query_one("SELECT rating FROM ratings WHERE output_id = ? AND user = ?", (output_id, user))
    return row["rating"] if row else None


def rate(store: Store, output_id: str, user: str, rating: str, comment: str | None) -> str:
    """Rate, or re-rate (which replaces the user's rating and comment); returns the rating's id."""
    now = utcnow()
    with store.transaction() as c:
        c.execute(
            "INSERT INTO ratings (id, output_id, user, rating, comment, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT (output_id, user) DO UPDATE SET "
            "rating = excluded.rating, comment = excluded.comment, updated_at = excluded.updated_at",
            (new_id("rt_"), output_id, user, rating, comment, now, now),
        )
        return c.execute("SELECT id FROM ratings WHERE output_id = ? AND user = ?", (output_id, user)).fetchone()["id"]


def unrate(store: Store, output_id: str, user: str) -> None:
    with store.transaction() as c:
        c.execute("DELETE FROM ratings WHERE output_id = ? AND user = ?", (output_id, user))


def totals(store: Store) -> tuple[int, int, int]:
    """(ratings, thumbs up, thumbs down) over everything."""
    row = store.query_one("SELECT COUNT(*) AS n, COUNT(CASE WHEN rating = 'up' THEN 1 END) AS up, COUNT(CASE WHEN rating = 'down' THEN 1 END) AS down FROM ratings")
    return row["n"], row["up"] or 0, row["down"] or 0


def per_version(store: Store) -> list[sqlite3.Row]:
    """kind, model, adapter, up, down: one row per version that has ratings."""
    return store.query(
        "SELECT o.kind, o.model, o.adapter, COUNT(CASE WHEN r.rating = 'up' THEN 1 END) AS up, COUNT(CASE WHEN r.rating = 'down' THEN 1 END) AS down "
        "FROM ratings r JOIN outputs o ON o.id = r.output_id GROUP BY o.kind, o.model, o.adapter "
        "ORDER BY o.kind, o.model, o.adapter NULLS FIRST"
    )


def per_day(store: Store) -> list[sqlite3.Row]:
    """day, model, adapter, up, n: ratings per day (by when they were last given) and version."""
    return store.query(
        "SELECT substr(r.updated_at, 1, 10) AS day, o.model, o.adapter, COUNT(CASE WHEN r.rating = 'up' THEN 1 END) AS up, "
        "COUNT(*) AS n FROM ratings r JOIN outputs o ON o.id = r.output_id "
        "GROUP BY day, o.model, o.adapter ORDER BY day"
    )


def ratings_in_order(store: Store) -> list[sqlite3.Row]:
    """at, rating, kind, model, adapter of every rating, oldest first: the data of approval curves."""
    return store.query(
        "SELECT r.updated_at AS at, r.rating, o.kind, o.model, o.adapter FROM ratings r "
        "JOIN outputs o ON o.id = r.output_id ORDER BY r.updated_at, r.rowid"
    )


def latest(store: Store, *, user: str | None = None, kind: str | None = None, model: str | None = None,
           rating: str | None = None, limit: int = 50) -> list[dict]:
    """The newest ratings with their outputs, each filter applied when given."""
    where, args = [], []
    if user is not None:
        where.append("r.user = ?")
        args.append(user)
    for column, value in (("o.kind", kind), ("o.model", model), ("r.rating", rating)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    sql = ("SELECT r.updated_at, r.user, r.rating, r.comment, o.id, o.kind, o.model, o.adapter, o.prompt, o.text "
           "FROM ratings r JOIN outputs o ON o.id = r.output_id")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY r.updated_at DESC LIMIT ?"
    return [dict(r) for r in store.query(sql, (*args, limit))]


def rated_outputs(store: Store, *, user: str | None = None, version: Version | None = None) -> list[sqlite3.Row]:
    """Ratings joined with their outputs, oldest first: all, one user's, or one text version's."""
    where, args = [], []
    if user is not None:
        where.append("r.user = ?")
        args.append(user)
    if version is not None:
        where.append("o.kind = 'text' AND o.model = ? AND o.adapter IS ?")
        args += version
    return store.query(
        "SELECT r.output_id, r.user, r.rating, r.comment, r.updated_at, o.kind, o.prompt, o.params, o.model, "
        "o.adapter, o.seed, o.text, o.file FROM ratings r JOIN outputs o ON o.id = r.output_id"
        + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.updated_at, r.id",
        tuple(args),
    )
