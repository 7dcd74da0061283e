"""Queries of the `comparisons` table (its one owner): the arena's blind A/B pairs of outputs and
their votes. Rows come back as `sqlite3.Row`."""

from __future__ import annotations

import sqlite3

from studio.store.db import Store, utcnow
from studio.store.outputs import Version


def create(store: Store, comparison_id: str, *, kind: str, prompt: str, a_output_id: str, b_output_id: str,
           user: str | None) -> None:
    with store.transaction() as c:
        c.execute(
            "INSERT INTO comparisons (id, kind, prompt, a_output_id, b_output_id, user, created_at) "
            "VALUES (?,?,?,?,?,?,?)",
            (comparison_id, kind, prompt, a_output_id, b_output_id, user, utcnow()),
        )


def vote(store: Store, comparison_id: str, winner: str) -> bool:
    """Record the one vote a comparison takes; False when it already had one (or does not exist)."""
    with store.transaction() as c:
        return c.execute("UPDATE comparisons SET winner = ?, voted_at = ? WHERE id = ? AND winner IS NULL",
                         (winner, utcnow(), comparison_id)).rowcount > 0


def voted(store: Store, kind: str) -> list[sqlite3.Row]:
    """winner and each side's model, adapter and params (am, aa, ap, bm, ba, bp) of the voted
    comparisons of one kind."""
    return store.query(
        "SELECT c.winner, a.model AS am, a.adapter AS aa, a.params AS ap, b.model AS bm, b.adapter AS ba, "
        "b.params AS bp FROM comparisons c JOIN outputs a ON a.id = c.a_output_id "
        "JOIN outputs b ON b.id = c.b_output_id WHERE c.kind = ? AND c.winner IS NOT NULL",
        (kind,),
    )


def get(store: Store, comparison_id: str) -> sqlite3.Row | None:
    return store.query_one("SELECT * FROM comparisons WHERE id = ?", (comparison_id,))


def decided_text_pairs(store: Store, *, user: str | None = None, version: Version | None = None) -> list[sqlite3.Row]:
    """prompt, winner ('a' or 'b'), a_text, b_text of decided text comparisons, in the order they were
    voted: all, the votes of one user, or those where one text version took part."""
    where, args = ["c.kind = 'text'", "c.winner IN ('a', 'b')"], []
    if user is not None:
        where.append("c.user = ?")
        args.append(user)
    if version is not None:
        where.append("((a.model = ? AND a.adapter IS ?) OR (b.model = ? AND b.adapter IS ?))")
        args += [*version, *version]
    return store.query(
        "SELECT c.prompt, c.winner, a.text AS a_text, b.text AS b_text FROM comparisons c "
        "JOIN outputs a ON a.id = c.a_output_id JOIN outputs b ON b.id = c.b_output_id "
        "WHERE " + " AND ".join(where) + " ORDER BY c.voted_at, c.id",
        tuple(args),
    )
