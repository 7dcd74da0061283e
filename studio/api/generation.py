"""Generation routes. Each result is stored as an output with an id that can be rated."""

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from studio.api.deps import get_studio, require_user
from studio.services import Studio
from studio.services.auth import User
from studio.services.text import TextGenerateParams, TextScoreParams

router = APIRouter(tags=["generation"])


@router.post("/text/generate")
async def generate_text(body: TextGenerateParams, studio: Studio = Depends(get_studio),
                        user: User = Depends(require_user)) -> dict:
    """Generate `num_outputs` continuations of `prompt` in one batched call."""
    return await run_in_threadpool(studio.text.generate, body, user=user)


@router.post("/text/perplexity")
async def text_perplexity(body: TextScoreParams, studio: Studio = Depends(get_studio),
                          user: User = Depends(require_user)) -> dict:
    """How well the model (+ adapter) predicts `text`: its perplexity (lower: less surprised), the
    number of tokens, and the mean log-probability per scored token."""
    return await run_in_threadpool(studio.text.perplexity, body, user=user)
