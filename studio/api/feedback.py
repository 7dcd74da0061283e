"""Outputs and ratings."""

from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from studio.api.deps import get_studio, require_user
from studio.services import Studio
from studio.services.arena import CompareParams
from studio.services.auth import User

router = APIRouter(tags=["feedback"])


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output_id: str = Field(..., max_length=64)
    rating: Literal["up", "down"] | None = Field(..., description="null removes your rating")
    comment: str | None = Field(None, max_length=2000)


@router.get("/outputs/{output_id}")
def get_output(output_id: str, studio: Studio = Depends(get_studio), user: User = Depends(require_user)) -> dict:
    """The output and your rating of it; admins also see the experiment arm that served it."""
    out = studio.outputs.get(output_id, user=user.name)
    if user.is_admin and (arm := studio.experiments.arm_of(output_id)) is not None:
        out["experiment"] = arm
    return out


FILE_TYPES = {"image/png": {}, "audio/wav": {}, "audio/flac": {}, "image/gif": {}, "text/plain": {}}


@router.get("/outputs/{output_id}/file", response_class=Response,
            responses={200: {"description": "The artifact: PNG, WAV/FLAC, GIF or text", "content": FILE_TYPES}})
def get_output_file(output_id: str, studio: Studio = Depends(get_studio)) -> Response:
    path, text, media_type = studio.outputs.file(output_id)
    if path is not None:
        return FileResponse(path, media_type=media_type)
    return PlainTextResponse(text or "")


@router.post("/feedback")
def rate(body: RatingIn, studio: Studio = Depends(get_studio), user: User = Depends(require_user)) -> dict:
    """Thumbs up/down on an output; rating again replaces. Committed before this answers."""
    return studio.feedback.rate(body.output_id, body.rating, user.name, body.comment)


@router.get("/feedback/stats")
def stats(studio: Studio = Depends(get_studio)) -> dict:
    """Counts per model version for everyone: no prompts, comments or names (those stay in exports)."""
    return studio.feedback.stats()


@router.get("/feedback/export", response_class=Response,
            responses={200: {"description": "JSON Lines", "content": {"application/x-ndjson": {}}}})
def export(format: Literal["jsonl", "kto", "dpo"] = Query("jsonl"), studio: Studio = Depends(get_studio),
           user: User = Depends(require_user)) -> Response:
    """Your own ratings (and arena votes, for dpo); an admin's export holds everyone's."""
    import json

    rows = studio.feedback.export(format, user=user)
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return Response(body, media_type="application/x-ndjson",
                    headers={"Content-Disposition": f'attachment; filename="feedback-{format}.jsonl"'})


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    winner: Literal["a", "b", "tie", "both_bad"]


@router.post("/compare")
def compare(body: CompareParams, studio: Studio = Depends(get_studio), user: User = Depends(require_user)) -> dict:
    """Two versions of a kind (text, image or speech) answer the same prompt with the same seed, in an
    order the studio picks at random; neither output (nor an image's PNG) says which version made it
    until you vote with /compare/{id}/vote. Image and speech outputs come with a `url`."""
    return studio.arena.compare(body, user=user)


@router.post("/compare/{comparison_id}/vote")
def vote(comparison_id: str, body: VoteIn, studio: Studio = Depends(get_studio),
         user: User = Depends(require_user)) -> dict:
    """Record the winner; the answer reveals which version was which ({model, adapter|lora|voice})."""
    return studio.arena.vote(comparison_id, body.winner, user=user.name)


@router.get("/compare/leaderboard")
def leaderboard(kind: Literal["text", "image", "speech"] = "text", studio: Studio = Depends(get_studio)) -> dict:
    """Bradley–Terry scores (log-strength; ties count half) with 95 % bootstrap intervals, per kind."""
    return {"kind": kind, "rows": studio.arena.leaderboard(kind)}
