"""Intelligibility, measured offline with pocketsphinx: espeak-ng names most of 10 sentences it was
never tuned on; white noise names (almost) none."""

from __future__ import annotations

from engines.speech import espeak
from engines.speech.intelligibility import SENTENCES, measure, white_noise


def espeak_speaker(text: str):
    backend = espeak.Espeak()
    return backend.say(text, voice="en-us", speed=1.0), backend.sample_rate


def test_espeak_is_identified_and_noise_is_not():
    heard = measure(espeak_speaker, open_vocabulary=False)
    assert heard.total == len(SENTENCES) == 10
    assert heard.identified >= 5, heard.heard
    noise = measure(white_noise(), open_vocabulary=False)
    assert noise.identified <= 2, noise.heard
