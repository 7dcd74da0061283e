"""Live A/B experiments (admins): thin routes over `studio.experiments` (ExperimentService)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from studio.api.deps import get_studio, require_admin
from studio.services import Studio
from studio.services.auth import User
from studio.services.experiments import ExperimentCreate

router = APIRouter(tags=["experiments"], dependencies=[Depends(require_admin)])


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arm: int | None = Field(None, ge=0, description="empty: the decided winner")


@router.post("/experiments", status_code=201)
def create_experiment(body: ExperimentCreate, studio: Studio = Depends(get_studio),
                      user: User = Depends(require_admin)) -> dict:
    """Start splitting the kind's unpinned traffic between the arms (one experiment per kind at a time)."""
    return studio.experiments.create(body, user=user.name)


@router.get("/experiments")
def list_experiments(studio: Studio = Depends(get_studio)) -> list[dict]:
    return studio.experiments.list()


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: str, studio: Studio = Depends(get_studio)) -> dict:
    """Arms with their ratings, approval and always-valid interval; the decision so far; the audit trail."""
    return studio.experiments.get(experiment_id)


@router.get("/experiments/{experiment_id}/curve")
def experiment_curve(experiment_id: str, studio: Studio = Depends(get_studio)) -> list[dict]:
    """Each arm's approval after each of its ratings, with its interval (the live plot's points)."""
    return studio.experiments.curve(experiment_id)


@router.post("/experiments/{experiment_id}/stop")
def stop_experiment(experiment_id: str, studio: Studio = Depends(get_studio),
                    user: User = Depends(require_admin)) -> dict:
    return studio.experiments.stop(experiment_id, user=user.name)


@router.post("/experiments/{experiment_id}/promote")
def promote_experiment(experiment_id: str, body: PromoteIn | None = None, studio: Studio = Depends(get_studio),
                       user: User = Depends(require_admin)) -> dict:
    """Make the winner (or the named arm) the kind's default version, with an audit row."""
    return studio.experiments.promote(experiment_id, user=user.name, arm=body.arm if body else None)
