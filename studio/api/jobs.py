"""Training jobs over HTTP: thin routes over `studio.jobs` (JobService)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from studio.api.deps import get_studio, require_admin, require_user
from studio.services import Studio
from studio.services.auth import User

router = APIRouter(tags=["jobs"])


class JobCreate(BaseModel):
    """Start a training job. `params` are the kind's parameters (see GET /jobs/kinds); unknown ones → 422."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="text-lora | image-lora | image-scratch | gan | text-feedback | reward | "
                                  "speech-finetune | export | image-export | selftest (GET /jobs/kinds)", max_length=64)
    dataset_id: str | None = Field(default=None, max_length=64)
    base_model: str | None = Field(default=None, max_length=300)
    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(default=None, max_length=100,
                             description="What the finished version is called (default: the trainer's name)")


# Declared before /jobs/{job_id} so that "kinds" is never taken for an id.
@router.get("/jobs/kinds")
def job_kinds(studio: Studio = Depends(get_studio), user: User = Depends(require_user)) -> list[dict]:
    """Every job kind with its parameters: name, type, default and what it does."""
    return studio.jobs.kinds()


@router.post("/jobs", status_code=201)
def create_job(
    body: JobCreate, studio: Studio = Depends(get_studio), user: User = Depends(require_admin)
) -> dict:
    return studio.jobs.create(body.kind, body.dataset_id, body.base_model, body.params, user=user, name=body.name)


@router.get("/jobs")
def list_jobs(studio: Studio = Depends(get_studio), user: User = Depends(require_user)) -> list[dict]:
    """All jobs, newest first."""
    return studio.jobs.list()


@router.get("/jobs/{job_id}")
def get_job(job_id: str, studio: Studio = Depends(get_studio), user: User = Depends(require_user)) -> dict:
    return studio.jobs.get(job_id)


@router.get("/jobs/{job_id}/events", response_class=Response,
            responses={200: {"description": "JSON Lines", "content": {"application/x-ndjson": {}}}})
def job_events(
    job_id: str,
    since: int = Query(0, ge=0, description="only events with a step greater than this"),
    studio: Studio = Depends(get_studio),
    user: User = Depends(require_user),
) -> Response:
    """JSON Lines: one event per logged step, `{"step", "time", "loss", …}`."""
    events = studio.jobs.events(job_id, since_step=since)
    body = "".join(json.dumps(e) + "\n" for e in events)
    return Response(body, media_type="application/x-ndjson")


@router.get("/jobs/{job_id}/log", response_class=PlainTextResponse)
def job_log(
    job_id: str,
    lines: int = Query(50, ge=1, le=5000, description="how many lines from the end"),
    studio: Studio = Depends(get_studio),
    user: User = Depends(require_user),
) -> PlainTextResponse:
    """The end of the trainer's train.log (stdout and stderr); admins only, paths relative to the data dir."""
    return PlainTextResponse(studio.jobs.log_tail(job_id, lines, user=user))


@router.get("/jobs/{job_id}/samples/{name}", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}, "audio/wav": {}}}})
def job_sample(job_id: str, name: str, studio: Studio = Depends(get_studio),
               user: User = Depends(require_user)) -> FileResponse:
    """A sample an event names (`samples/step-80-0.wav` → `name` = `step-80-0.wav`): a picture, or a sentence
    spoken by the voice being trained; admins only."""
    path = studio.jobs.sample_file(job_id, name, user=user)
    return FileResponse(path, media_type="audio/wav" if path.suffix == ".wav" else "image/png")


@router.post("/jobs/{job_id}/cancel")
def cancel_job(
    job_id: str, studio: Studio = Depends(get_studio), user: User = Depends(require_admin)
) -> dict:
    """Queued: cancelled at once. Running: stopped (it saves a checkpoint first); 409 when already finished."""
    return studio.jobs.cancel(job_id, user=user)


@router.post("/jobs/{job_id}/resume")
def resume_job(
    job_id: str, studio: Studio = Depends(get_studio), user: User = Depends(require_admin)
) -> dict:
    """Re-queue an interrupted or cancelled job; it continues from its last checkpoint."""
    return studio.jobs.resume(job_id, user=user)
