"""Speech data preparation on real speech (espeak-ng's, offline): silence trimmed, loudness
normalised, a long recording cut at its pauses and transcribed, clips without speech or clipped
ones marked."""

import numpy as np
import pytest

from engines.speech import prep
from engines.speech.espeak import Espeak, available
from engines.speech.intelligibility import SENTENCES

pytestmark = pytest.mark.skipif(not available(), reason="espeak-ng library missing")
RATE = 22_050


@pytest.fixture(scope="module")
def say():
    engine = Espeak()
    return lambda text: engine.say(text, voice=None, speed=1.0)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.float32)


def test_a_quiet_sentence_between_silences_is_trimmed_and_brought_to_the_target_loudness(say):
    import pyloudnorm

    sentence = say(SENTENCES[0]) * 0.05  # recorded far too quietly
    (part,) = prep.prepare(np.concatenate([silence(1.5), sentence, silence(1.5)]), RATE, " the cat sat on the mat ")
    spoken = len(sentence) / RATE
    assert spoken - 0.2 < part.duration_s < spoken + 2 * prep.PAD_S + 0.3  # the 3 s of silence are gone
    loudness = pyloudnorm.Meter(RATE).integrated_loudness(part.audio.astype(np.float64))
    assert abs(loudness - prep.TARGET_LUFS) < 1.0
    assert part.text == "the cat sat on the mat" and part.issues == [] and not part.transcribed


def test_a_long_recording_is_cut_at_its_pauses_and_transcribed(say):
    recording = np.concatenate([piece for s in SENTENCES for piece in (say(s), silence(0.7))])
    assert len(recording) / RATE > 2 * 10  # over twenty seconds
    parts = prep.prepare(recording, RATE, "one transcript for everything")
    assert len(parts) >= 2 and all(p.duration_s <= prep.MAX_CLIP_S + 2 * prep.PAD_S for p in parts)
    assert all(p.transcribed and "transcribed automatically" in p.issues[0] for p in parts)
    heard = " ".join(p.text for p in parts).split()
    vocabulary = {w for s in SENTENCES for w in s.split()}
    assert len(heard) >= 10 and sum(w in vocabulary for w in heard) >= 0.3 * len(heard)


def test_noise_has_no_speech_and_a_clipped_recording_says_so(say):
    noise = np.random.default_rng(0).normal(0, 0.05, RATE * 2).astype(np.float32)
    (part,) = prep.prepare(noise, RATE, "nothing")
    assert part.issues == [prep.NO_SPEECH] and part.duration_s == 2.0
    loud = np.clip(say(SENTENCES[1]) * 8, -1, 1)
    (part,) = prep.prepare(loud, RATE, SENTENCES[1])
    assert any("clips" in issue for issue in part.issues)


def test_cut_points_group_spans_up_to_the_limit_and_cut_only_in_pauses():
    spans = [(0.0, 4.0), (4.5, 9.0), (9.5, 14.0), (14.5, 16.0), (17.0, 40.0)]
    assert prep.cut_points(spans, 15.0) == [(0.0, 14.0), (14.5, 16.0), (17.0, 32.0), (32.0, 40.0)]
