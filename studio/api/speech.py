"""Speech routes. Each clip is stored as an output with an id that can be rated."""

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from studio.api.deps import get_studio, require_user
from studio.services import Studio
from studio.services.auth import User
from studio.services.speech import SpeechGenerateParams

router = APIRouter(tags=["generation"])


@router.post("/speech/generate")
async def generate_speech(body: SpeechGenerateParams, studio: Studio = Depends(get_studio),
                          user: User = Depends(require_user)) -> dict:
    """Speak `text` (any length: synthesised sentence by sentence and joined) into one WAV or FLAC clip."""
    return await run_in_threadpool(studio.speech.generate, body, user=user)


@router.get("/speech/voices")
async def speech_voices(model: str | None = Query(None, max_length=300),
                        studio: Studio = Depends(get_studio)) -> dict:
    """A speech model's voices (empty for single-voice models such as MMS-TTS), family, language and controls."""
    return await run_in_threadpool(studio.speech.describe, model)
