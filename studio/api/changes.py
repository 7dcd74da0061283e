"""What changed, in a few numbers: an open page polls this (a dict read, no query but the unfinished
jobs) and redraws only when the answer moves (studio/ui/live.py)."""

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from studio.api.deps import current_user, get_studio
from studio.services.auth import User
from studio.services.changes import TOPICS

router = APIRouter(tags=["account"])


class ChangesOut(BaseModel):
    topics: dict[str, int]
    activity: str


@router.get("/changes", response_model=ChangesOut)
def changes(request: Request, user: User = Depends(current_user)) -> dict:
    """A counter per topic (models, datasets, jobs, ratings, experiments), bumped on every change
    of what the lists show; for admins also `activity`, a digest that moves while a job runs."""
    studio = get_studio(request)
    counts = studio.changes.version(*TOPICS)
    return {"topics": dict(zip(TOPICS, counts, strict=True)),
            "activity": studio.jobs.activity() if user.is_admin else ""}
