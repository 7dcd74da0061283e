"""Thumbs on any output: stored with the user and committed before the answer (durable)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from studio.services.auth import GUEST, User
from studio.services.errors import Forbidden, Invalid, NotFound
from studio.services.outputs import OutputService
from studio.services.versions import version_label
from studio.store import Store
from studio.store import comparisons as comparison_rows
from studio.store import outputs as output_rows
from studio.store.outputs import Version, rated_outputs  # rated_outputs: also feedback training's rows

RATINGS = ("up", "down")
log = logging.getLogger("studio.feedback")


class FeedbackService:
    def __init__(self, store: Store, outputs: OutputService, on_rated: Callable[[str], None] | None = None):
        self.store = store
        self.outputs = outputs
        self.on_rated = on_rated  # e.g. a live experiment re-reads its evidence

    def rate(self, output_id: str, rating: str | None, user: str, comment: str | None = None) -> dict:
        """Rate (or re-rate, which replaces) an output; rating None removes the user's rating."""
        self.outputs.require(output_id)  # 404 for unknown ids
        if rating is None:
            output_rows.unrate(self.store, output_id, user)
            return {"id": None, "output_id": output_id, "rating": None}
        if rating not in RATINGS:
            raise Invalid("rating must be 'up' or 'down'.")
        if comment is not None and len(comment) > 2000:
            raise Invalid("comment: keep it under 2,000 characters.")
        rating_id = output_rows.rate(self.store, output_id, user, rating, comment)
        if self.on_rated is not None:  # after the commit: the rating is durable whatever happens next
            try:
                self.on_rated(output_id)
            except Exception:  # an experiment's bookkeeping must never turn a stored rating into an error
                log.exception("after rating %s", output_id)
        return {"id": rating_id, "output_id": output_id, "rating": rating}

    def stats(self) -> dict:
        n, up, down = output_rows.totals(self.store)
        by_model = [
            {"kind": r["kind"], "model": r["model"], "adapter": r["adapter"], "up": r["up"], "down": r["down"],
             "approval": round(r["up"] / (r["up"] + r["down"]), 4) if (r["up"] + r["down"]) else None}
            for r in output_rows.per_version(self.store)
        ]
        return {"total": n, "up": up, "down": down, "by_model": by_model}

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
        return [{"day": r["day"], "version": version_label(r["model"], r["adapter"]),
                 "approval": r["up"] / r["n"], "ratings": r["n"]} for r in output_rows.per_day(self.store)]

    def approval_curve(self) -> list[dict]:
        """Per version, its approval so far after each rating: one point per rating, so a line
        appears from the second rating on (a per-day mean needs days of ratings to draw one)."""
        up: dict[str, int] = {}
        n: dict[str, int] = {}
        points = []
        for r in output_rows.ratings_in_order(self.store):
            version = version_label(r["model"], r["adapter"])
            n[version] = n.get(version, 0) + 1
            up[version] = up.get(version, 0) + (r["rating"] == "up")
            points.append({"at": r["at"], "version": version, "approval": up[version] / n[version],
                           "ratings": n[version]})
        return points

    def latest(self, *, kind: str | None = None, model: str | None = None, rating: str | None = None,
               limit: int = 50, user: User | None = None) -> list[dict]:
        """The newest ratings with their outputs; a non-admin sees only their own (others' comments are theirs)."""
        only = user.name if user is not None and not user.is_admin else None
        return output_rows.latest(self.store, user=only, kind=kind, model=model, rating=rating, limit=limit)

    def get_rating(self, output_id: str, user: str) -> str | None:
        rating = output_rows.rating_of(self.store, output_id, user)
        if rating is None and not output_rows.exists(self.store, output_id):
            raise NotFound(f"No output with id '{output_id}'.")
        return rating


# -- the preference data: the same rows for the exports and for training from ratings -------------
def kto_rows(rated: list) -> list[dict]:
    """TRL's unpaired-preference rows from the text ones among `rated_outputs`."""
    return [{"prompt": r["prompt"], "completion": r["text"], "label": r["rating"] == "up"}
            for r in rated if r["kind"] == "text"]


def dpo_pairs(store: Store, *, user: str | None = None, version: Version | None = None) -> list[dict]:
    """{"prompt", "chosen", "rejected"} from decided text comparisons: all, the votes of one user,
    or those where one text version took part."""
    rows = comparison_rows.decided_text_pairs(store, user=user, version=version)
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
