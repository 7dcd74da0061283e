"""Speech: text to speech with VITS / MMS-TTS (and SpeechT5), any length of text, English numbers spoken."""

from engines.speech.synthesize import (
    SpeechEngine,
    SpeechInputError,
    SpeechRequest,
    SpeechResult,
    available_voices,
    language_of,
    model_family,
)
from engines.speech.text_normalize import normalize_english, split_for_speech

__all__ = [
    "SpeechEngine",
    "SpeechInputError",
    "SpeechRequest",
    "SpeechResult",
    "available_voices",
    "language_of",
    "model_family",
    "normalize_english",
    "split_for_speech",
]
