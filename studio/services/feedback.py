"""Thumbs on any output: stored with the user and committed before the answer (durable)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from studio.services.auth import GUEST, User
from studio.services.errors import Forbidden, Invalid, NotFound
from studio.services.outputs import OutputService
from studio.services.versions import version_label
from studio.store import Store, new_id, utcnow

RATINGS = ("up", "down")
log = logging.getLogger("studio.feedback")


class FeedbackService:
    def __init__(self, store: Store, outputs: OutputService, on_rated: Callable[[str], None] | None = None):
        self.store = store
        self.outputs = outputs
        self.on_rated = on_rated  # e.g. a live experiment re-reads its evidence

    def rate(self, output_id: str, rating: str | None, user: str, comment: str | None = None) -> dict:
        """Rate (or re-rate, which replaces) an output; rating None removes the user's rating."""
        self.outputs._row(output_id)  # 404 for unknown ids
        if rating is None:
            with self.store.transaction() as c:
                c.execute("DELETE FROM ratings WHERE output_id = ? AND user = ?", (output_id, user))
            return {"id": None, "output_id": output_id, "rating": None}
        if rating not in RATINGS:
            raise Invalid("rating must be 'up' or 'down'.")
        if comment is not None and len(comment) > 2000:
            raise Invalid("comment: keep it under 2,000 characters.")
        now = utcnow()
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO ratings (id, output_id, user, rating, comment, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT (output_id, user) DO UPDATE SET "
                "rating = excluded.rating, comment = excluded.comment, updated_at = excluded.updated_at",
                (new_id("rt_"), output_id, user, rating, comment, now, now),
            )
            row = c.execute("SELECT id FROM ratings WHERE output_id = ? AND user = ?", (output_id, user)).fetchone()
        if self.on_rated is not None:  # after the commit: the rating is durable whatever happens next
            try:
                self.on_rated(output_id)
            except Exception:  # an experiment's bookkeeping must never turn a stored rating into an error
                log.exception("after rating %s", output_id)
        return {"id": row["id"], "output_id": output_id, "rating": rating}

    def stats(self) -> dict:
        total = self.store.query_one(
            "SELECT COUNT(*) AS n, SUM(rating = 'up') AS up, SUM(rating = 'down') AS down FROM ratings"
        )
        rows = self.store.query(
            "SELECT o.kind, o.model, o.adapter, SUM(r.rating = 'up') AS up, SUM(r.rating = 'down') AS down "
            "FROM ratings r JOIN outputs o ON o.id = r.output_id GROUP BY o.kind, o.model, o.adapter "
            "ORDER BY o.kind, o.model, o.adapter"
        )
        by_model = [
            {"kind": r["kind"], "model": r["model"], "adapter": r["adapter"], "up": r["up"], "down": r["down"],
             "approval": round(r["up"] / (r["up"] + r["down"]), 4) if (r["up"] + r["down"]) else None}
            for r in rows
        ]
        return {"total": total["n"], "up": total["up"] or 0, "down": total["down"] or 0, "by_model": by_model}

    def export(self, fmt: str = "jsonl", user: User | None = None) -> list[dict]:
        """JSON Lines rows: everyone's for an admin (or the studio itself, user None), a person's
        own ratings and votes otherwise — prompts and comments are private to who wrote them."""
        if fmt not in ("jsonl", "kto", "dpo"):
            raise Invalid("format must be jsonl, kto or dpo.")
        only = _export_scope(user)
        if fmt == "dpo":
            return dpo_pairs(self.store, user=only)
        rows = rated_outputs(self.store, user=only)
        if fmt == "kto":
            return kto_rows(rows)
        return [
            {"output_id": r["output_id"], "kind": r["kind"], "prompt": r["prompt"], "params": json.loads(r["params"]),
             "model": r["model"], "adapter": r["adapter"], "seed": r["seed"], "text": r["text"], "file": r["file"],
             "user": r["user"], "rating": r["rating"], "comment": r["comment"], "rated_at": r["updated_at"]}
            for r in rows
        ]

    def over_time(self) -> list[dict]:
        """Approval per day and version: the data of the dashboard's plot."""
        rows = self.store.query(
            "SELECT substr(r.updated_at, 1, 10) AS day, o.model, o.adapter, SUM(r.rating = 'up') AS up, "
            "COUNT(*) AS n FROM ratings r JOIN outputs o ON o.id = r.output_id "
            "GROUP BY day, o.model, o.adapter ORDER BY day"
        )
        return [{"day": r["day"], "version": version_label(r["model"], r["adapter"]),
                 "approval": r["up"] / r["n"], "ratings": r["n"]} for r in rows]

    def latest(self, *, kind: str | None = None, model: str | None = None, rating: str | None = None,
               limit: int = 50, user: User | None = None) -> list[dict]:
        """The newest ratings with their outputs; a non-admin sees only their own (others' comments are theirs)."""
        where, args = [], []
        if user is not None and not user.is_admin:
            where.append("r.user = ?")
            args.append(user.name)
        for column, value in (("o.kind", kind), ("o.model", model), ("r.rating", rating)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        sql = ("SELECT r.updated_at, r.user, r.rating, r.comment, o.id, o.kind, o.model, o.adapter, o.prompt, o.text "
               "FROM ratings r JOIN outputs o ON o.id = r.output_id")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.updated_at DESC LIMIT ?"
        return [dict(r) for r in self.store.query(sql, (*args, limit))]

    def get_rating(self, output_id: str, user: str) -> str | None:
        row = self.store.query_one("SELECT rating FROM ratings WHERE output_id = ? AND user = ?", (output_id, user))
        if row is None and self.store.query_one("SELECT 1 FROM outputs WHERE id = ?", (output_id,)) is None:
            raise NotFound(f"No output with id '{output_id}'.")
        return row["rating"] if row else None


# -- the preference data: one query each for the exports and for training from ratings -----------
Version = tuple[str, str | None]  # (model, adapter or None): one text version


def rated_outputs(store: Store, *, user: str | None = None, version: Version | None = None) -> list:
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


def kto_rows(rated: list) -> list[dict]:
    """TRL's unpaired-preference rows from the text ones among `rated_outputs`."""
    return [{"prompt": r["prompt"], "completion": r["text"], "label": r["rating"] == "up"}
            for r in rated if r["kind"] == "text"]


def dpo_pairs(store: Store, *, user: str | None = None, version: Version | None = None) -> list[dict]:
    """{"prompt", "chosen", "rejected"} from decided text comparisons: all, the votes of one user,
    or those where one text version took part."""
    where, args = ["c.kind = 'text'", "c.winner IN ('a', 'b')"], []
    if user is not None:
        where.append("c.user = ?")
        args.append(user)
    if version is not None:
        where.append("((a.model = ? AND a.adapter IS ?) OR (b.model = ? AND b.adapter IS ?))")
        args += [*version, *version]
    rows = store.query(
        "SELECT c.prompt, c.winner, a.text AS a_text, b.text AS b_text FROM comparisons c "
        "JOIN outputs a ON a.id = c.a_output_id JOIN outputs b ON b.id = c.b_output_id "
        "WHERE " + " AND ".join(where) + " ORDER BY c.voted_at, c.id",
        tuple(args),
    )
    return [{"prompt": r["prompt"],
             "chosen": r["a_text"] if r["winner"] == "a" else r["b_text"],
             "rejected": r["b_text"] if r["winner"] == "a" else r["a_text"]}
            for r in rows]


def _export_scope(user: User | None) -> str | None:
    """Whose rows an export holds: None for everyone's (admins), else the user's own name."""
    if user is None or user.is_admin:
        return None
    if user.is_guest and user.name == GUEST.name:  # every visitor without an account is this one name
        raise Forbidden("Visitors without an account cannot export ratings: theirs cannot be told apart "
                        "from other visitors'. Sign in to export your own.")
    return user.name
