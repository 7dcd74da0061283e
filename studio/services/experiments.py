"""Live A/B experiments: versions of one kind share the traffic that does not pin a version, thumbs
are tallied per arm, an always-valid sequential test decides (studio/services/sequential.py), and
the winner is promoted to the kind's default — automatically or by an admin — with an audit row.

Assignment is sticky: a person (account or visitor id) always gets the same arm of an
experiment, drawn from a hash of the experiment and the person by the arms' weights. Which arm
served an output is recorded apart from the output, and only admins see it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from studio.services.changes import EXPERIMENTS, MODELS, Changes
from studio.services.errors import Conflict, Invalid, NotFound
from studio.services.sequential import confidence_sequence, msprt
from studio.services.settings import SettingsService
from studio.services.versions import version_label
from studio.store import IntegrityError, Store
from studio.store import experiments as table

ALPHA = 0.05


class Arm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, max_length=300, description="empty: the kind's current default")
    adapter: str | None = Field(None, max_length=64, description="a text adapter or image LoRA id")


class ExperimentCreate(BaseModel):
    """The form of POST /experiments."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=100)
    kind: str = Field("text", pattern="^(text|image|speech)$")
    arms: list[Arm] = Field(..., min_length=2, max_length=6)
    weights: list[float] | None = Field(None, description="share of traffic per arm; default: equal")
    min_samples: int = Field(100, ge=0, le=1_000_000, description="rated outputs before a decision may end it")
    auto_promote: bool = Field(False, description="make the winner the kind's default as soon as it is decided")


@dataclass(frozen=True)
class Assignment:
    experiment_id: str
    arm: int
    model: str | None
    adapter: str | None


class ExperimentService:
    def __init__(self, store: Store, settings: SettingsService,
                 resolve_version: Callable[[str, str | None, str | None], tuple[str, str | None]],
                 changes: Changes | None = None):
        self.store = store
        self.changes = changes or Changes()  # bumped on every change of an experiment's state, for the pages
        self.settings = settings
        self.resolve_version = resolve_version  # (kind, model, adapter) → (model id, adapter id); 404 if unknown

    # -- admin -----------------------------------------------------------------------------------
    def create(self, params: ExperimentCreate, *, user: str) -> dict:
        arms = [dict(zip(("model", "adapter"), self.resolve_version(params.kind, a.model, a.adapter), strict=True))
                for a in params.arms]
        labels = [version_label(a["model"], a["adapter"]) for a in arms]
        if len(set(labels)) != len(labels):
            raise Invalid(f"arms: each arm must be a different version ({', '.join(labels)}).")
        weights = params.weights or [1.0] * len(arms)
        if len(weights) != len(arms) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise Invalid(f"weights: give {len(arms)} non-negative shares with a positive sum.")
        weights = [w / sum(weights) for w in weights]
        try:
            experiment_id = table.create(self.store, name=params.name, kind=params.kind, arms=arms, weights=weights,
                                         min_samples=params.min_samples, auto_promote=params.auto_promote, user=user)
        except IntegrityError as exc:
            running = table.running(self.store, params.kind)
            raise Conflict(f"Experiment '{running['name'] if running else '?'}' already runs for {params.kind}: "
                           "stop it first.") from exc
        table.audit(self.store, user, "experiment.start", experiment_id, {"arms": labels, "weights": weights})
        self.changes.bump(EXPERIMENTS)
        return self.get(experiment_id)

    def list(self) -> list[dict]:
        return [self._view(row) for row in table.all_(self.store)]

    def get(self, experiment_id: str) -> dict:
        return self._view(self._row(experiment_id))

    def stop(self, experiment_id: str, *, user: str) -> dict:
        row = self._row(experiment_id)
        if not table.end(self.store, experiment_id, "stopped", self._decide(row)):
            raise Conflict(f"Experiment '{row['name']}' is already {row['status']}.")
        table.audit(self.store, user, "experiment.stop", experiment_id, {})
        self.changes.bump(EXPERIMENTS)
        return self.get(experiment_id)

    def promote(self, experiment_id: str, *, user: str | None, arm: int | None = None) -> dict:
        """Make the decided winner (or, for an admin's explicit choice, `arm`) the kind's default."""
        row = self._row(experiment_id)
        decision = self._decide(row) if row["status"] == "running" else row["decision"]
        chosen = decision.get("winner") if arm is None else arm
        if chosen is None:
            raise Conflict("No winner yet: wait for the decision, or name the arm to promote.")
        if not 0 <= chosen < len(row["arms"]):
            raise Invalid(f"arm: 0 to {len(row['arms']) - 1}.")
        if row["status"] == "running":
            table.end(self.store, experiment_id, "concluded", decision)
        winner = row["arms"][chosen]
        label = version_label(winner["model"], winner["adapter"])
        self.settings.set_default_model(row["kind"], label, user)
        table.mark_promoted(self.store, experiment_id, user=user,
                            evidence={"arm": chosen, "version": label, "decision": decision})
        self.changes.bump(EXPERIMENTS, MODELS)
        return self.get(experiment_id)

    # -- traffic -----------------------------------------------------------------------------------
    def assign(self, kind: str, person: str) -> Assignment | None:
        """The arm for a request of `kind` that pins no version, or None when nothing runs."""
        row = table.running(self.store, kind)
        if row is None:
            return None
        draw = int.from_bytes(hashlib.sha256(f"{row['id']}:{person}".encode()).digest()[:8], "big") / 2**64
        arm, edge = len(row["weights"]) - 1, 0.0
        for i, w in enumerate(row["weights"]):
            edge += w
            if draw < edge:
                arm = i
                break
        chosen = row["arms"][arm]
        return Assignment(row["id"], arm, chosen["model"], chosen["adapter"])

    def record(self, assignment: Assignment, output_ids: list[str]) -> None:
        table.record_outputs(self.store, assignment.experiment_id, assignment.arm, output_ids)

    def arm_of(self, output_id: str) -> dict | None:
        """{"experiment_id", "arm"} of an output served by an experiment (for admins), else None."""
        found = table.arm_of(self.store, output_id)
        return {"experiment_id": found[0], "arm": found[1]} if found else None

    def on_rating(self, output_id: str) -> None:
        """A rating arrived: decide the output's experiment if its evidence is now enough."""
        found = table.arm_of(self.store, output_id)
        if found is None:
            return
        row = table.get(self.store, found[0])
        if row is None or row["status"] != "running":
            return
        decision = self._decide(row)
        if decision["winner"] is None or decision["rated"] < row["min_samples"]:
            return
        if table.end(self.store, row["id"], "concluded", decision):
            table.audit(self.store, None, "experiment.decide", row["id"], decision)
            self.changes.bump(EXPERIMENTS)
            if row["auto_promote"]:
                self.promote(row["id"], user=None)

    # -- evidence ----------------------------------------------------------------------------------
    def _row(self, experiment_id: str) -> dict:
        row = table.get(self.store, experiment_id)
        if row is None:
            raise NotFound(f"No experiment with id '{experiment_id}'.")
        return row

    def _decide(self, row: dict) -> dict:
        """Each arm against arm 0 (the control), at α split over the comparisons."""
        counts = table.tallies(self.store, row["id"])
        n0, up0 = counts.get(0, (0, 0))
        alpha = ALPHA / max(1, len(row["arms"]) - 1)
        better, worse, tests = [], [], []
        for arm in range(1, len(row["arms"])):
            n, up = counts.get(arm, (0, 0))
            d = msprt(up0, n0, up, n, alpha=alpha)
            tests.append({"arm": arm, "vs": 0, "difference": round(d.difference, 4),
                          "likelihood_ratio": round(d.likelihood_ratio, 3), "p_value": round(d.p_value, 4)})
            (better if d.winner == 1 else worse if d.winner == 0 else []).append((d.difference, arm))
        winner = max(better)[1] if better else (0 if len(worse) == len(row["arms"]) - 1 else None)
        return {"winner": winner, "alpha": ALPHA, "tests": tests, "rated": sum(n for n, _ in counts.values()),
                "rule": "mixture SPRT on approval, always valid (checked after every rating)"}

    def _view(self, row: dict) -> dict:
        counts = table.tallies(self.store, row["id"])
        arms = []
        for i, arm in enumerate(row["arms"]):
            n, up = counts.get(i, (0, 0))
            lo, hi = confidence_sequence(up, n)
            arms.append({**arm, "version": version_label(arm["model"], arm["adapter"]), "weight": row["weights"][i],
                         "n": n, "up": up, "down": n - up, "approval": round(up / n, 4) if n else None,
                         "interval": [round(lo, 4), round(hi, 4)]})
        decision = self._decide(row) if row["status"] == "running" else row["decision"]
        return {"id": row["id"], "name": row["name"], "kind": row["kind"], "status": row["status"], "arms": arms,
                "decision": decision, "min_samples": row["min_samples"], "auto_promote": bool(row["auto_promote"]),
                "promoted": bool(row["promoted"]), "created_by": row["created_by"], "created_at": row["created_at"],
                "ended_at": row["ended_at"], "audit": table.audit_rows(self.store, row["id"])}

    def curve(self, experiment_id: str) -> list[dict]:
        """Approval of each arm after each of its ratings, with its interval: the live plot's points."""
        self._row(experiment_id)
        n, up, points = {}, {}, []
        for arm, rating in table.history(self.store, experiment_id):
            n[arm] = n.get(arm, 0) + 1
            up[arm] = up.get(arm, 0) + (rating == "up")
            lo, hi = confidence_sequence(up[arm], n[arm])
            points.append({"arm": arm, "ratings": n[arm], "approval": up[arm] / n[arm], "low": lo, "high": hi})
        return points
