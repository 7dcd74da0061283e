"""Speech engine on the starter VITS: English text normalisation, chunking, seeds, controls, memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from engines.speech import (
    SpeechEngine,
    SpeechInputError,
    SpeechRequest,
    available_voices,
    language_of,
    model_family,
    normalize_english,
    split_for_speech,
)
from engines.speech.text_normalize import number_to_words, ordinal_to_words, year_to_words
from engines.starter import STARTER_SPEECH, ensure_starter

PROSE = ("The quick brown fox jumps over the lazy dog. On 2024-05-01 at 10:30, Dr. Smith paid $3.50 for "
         "21 apples, i.e. about 17 cents each! Was it worth it? ")


@pytest.fixture(scope="module")
def starter_dir(tmp_path_factory):
    return ensure_starter(STARTER_SPEECH, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def engine(starter_dir):
    import torch

    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    # A tiny model whose every chunk has its own length: thread hand-offs and oneDNN's per-shape kernel
    # builds cost more than they give (2-4x slower on a busy 2-core box).
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    yield SpeechEngine(starter_dir, language=language_of(STARTER_SPEECH)).load()
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = onednn


# -- normaliser --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "spoken"), [
    ("I have 3 cats", "I have three cats"),
    ("It costs $3.50.", "It costs three dollars and fifty cents."),
    ("$1 or $0.05 or $2.5 million", "one dollar or five cents or two point five million dollars"),
    ("£10.99", "ten pounds and ninety nine pence"),
    ("Pi is 3.14 and 50% of 1,234,567 is big.",
     "Pi is three point one four and fifty percent of one million two hundred thirty four thousand five hundred "
     "sixty seven is big."),
    ("the 21st, 2nd, 3rd, 11th and 100th", "the twenty first, second, third, eleventh and one hundredth"),
    ("In 1984, 1905, 2005 and 2024.", "In nineteen eighty four, nineteen oh five, two thousand five and twenty twenty four."),
    ("Born 2024-05-01.", "Born May first, twenty twenty four."),
    ("Due 05/01/2024 or 25/12/2023", "Due May first, twenty twenty four or December twenty fifth, twenty twenty three"),
    ("May 3, 1999", "May third, nineteen ninety nine"),
    ("Meet at 10:30, 9:05 pm or 12:00.", "Meet at ten thirty, nine oh five p m or twelve o'clock."),
    ("Dr. Smith, Mr. and Mrs. Jones met on St. Paul St. in town.",
     "Doctor Smith, Mister and Missus Jones met on Saint Paul Street in town."),
    ("Fruit, e.g. apples, pears etc. Then more.", "Fruit, for example apples, pears et cetera. Then more."),
    ("-5 degrees & No. 7", "minus five degrees and number seven"),
    ("a café — naïve", "a cafe, naive"),
])
def test_english_numbers_dates_money_and_abbreviations_are_words(text, spoken):
    assert normalize_english(text) == spoken


def test_number_words():
    assert number_to_words(0) == "zero"
    assert number_to_words(115) == "one hundred fifteen"
    assert number_to_words(1_000_001) == "one million one"
    assert ordinal_to_words(12) == "twelfth" and ordinal_to_words(40) == "fortieth"
    assert year_to_words(1900) == "nineteen hundred" and year_to_words(2010) == "twenty ten"


def test_paragraph_breaks_survive_normalisation():
    assert normalize_english("One.\n\n\nTwo  3.") == "One.\n\nTwo three."


# -- chunking ----------------------------------------------------------------------------------------
def test_long_text_is_cut_at_sentences_with_pauses():
    chunks = split_for_speech("First one. Second one?\n\nNew paragraph! Last.")
    assert [c.text for c in chunks] == ["First one.", "Second one?", "New paragraph!", "Last."]
    assert [c.pause_s for c in chunks] == [0.25, 0.6, 0.25, 0.0]  # longer at the paragraph, none at the end


def test_over_long_sentences_are_cut_at_commas_then_spaces():
    clauses = ", ".join(["a clause of some words"] * 60) + "."
    words = " ".join(["word"] * 300)
    chunks = split_for_speech(f"{clauses} {words}", max_chars=100)
    assert all(len(c.text) <= 100 for c in chunks)
    assert " ".join(c.text for c in chunks) == f"{clauses} {words}"  # nothing lost or reordered
    assert chunks[0].text.endswith(",") and chunks[0].pause_s > 0


# -- engine ------------------------------------------------------------------------------------------
def test_the_registry_config_picks_the_family(starter_dir, engine):
    assert model_family(starter_dir) == "vits" and engine.family == "vits"
    assert available_voices(starter_dir) == [] and engine.voices() == []
    assert engine.sample_rate == 16_000
    assert language_of("facebook/mms-tts-fra") == "fra" and language_of("microsoft/speecht5_tts") == "eng"


def test_same_seed_same_samples_and_settings_do_not_leak(engine):
    default_noise = engine.backend.model.noise_scale
    a = engine.synthesize(SpeechRequest("Hello there, friend.", seed=11))
    b = engine.synthesize(SpeechRequest("Hello there, friend.", seed=11, noise_scale=1.2, speed=2.0))
    c = engine.synthesize(SpeechRequest("Hello there, friend.", seed=11))
    assert a.audio.dtype == np.float32 and a.duration_s > 0 and a.seed == 11
    assert np.array_equal(a.audio, c.audio)  # the request in between changed nothing for later ones
    assert engine.backend.model.noise_scale == default_noise
    assert b.duration_s < a.duration_s  # twice the speaking rate
    assert b.noise_scale == 1.2 and a.noise_scale == pytest.approx(default_noise)
    d = engine.synthesize(SpeechRequest("Hello there, friend.", seed=12))
    assert not np.array_equal(a.audio, d.audio)
    assert np.abs(a.audio).max() <= 1.0


def test_unsayable_characters_are_listed_once_and_dropped(engine):
    result = engine.synthesize(SpeechRequest("Snow ☃ and ☃ more snow ✓.", seed=1))
    assert result.warnings == ["This model cannot say these characters, so they were left out: ☃ ✓."]
    assert "☃" not in result.spoken_text and result.duration_s > 0
    with pytest.raises(SpeechInputError, match="cannot say ☃ 中"):
        engine.synthesize(SpeechRequest("☃ 中 ☃"))
    with pytest.raises(SpeechInputError, match="nothing to say"):
        engine.synthesize(SpeechRequest(" ... !? "))
    with pytest.raises(SpeechInputError, match="single voice"):
        engine.synthesize(SpeechRequest("hello", voice="slt"))


def test_other_languages_keep_digits_with_a_warning(starter_dir):
    french = SpeechEngine(starter_dir, language="fra").load()
    result = french.synthesize(SpeechRequest("J'ai 3 chats.", seed=1))
    assert "3" in result.spoken_text
    assert any("English only" in w for w in result.warnings)


def test_progress_is_reported_per_chunk(engine):
    seen = []
    result = engine.synthesize(SpeechRequest(PROSE * 3, seed=2, speed=2.0), on_progress=lambda d, t: seen.append((d, t)))
    assert result.chunks == 9
    assert seen == [(i, 9) for i in range(10)]


def test_peak_memory_beyond_the_audio_does_not_grow_with_the_text(engine):
    """Each chunk is copied into one clip that grows in place (its own memory map) and is freed at once:
    Python/numpy memory at the peak stays a small constant whatever the length. Keeping the chunks to
    join them at the end would add the whole audio (several MB here) to the peak."""
    peaks = {}
    for n in (500, 2500):
        text = (PROSE * 30)[:n]
        tracemalloc.start()
        try:
            result = engine.synthesize(SpeechRequest(text, seed=3, speed=2.0))
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.chunks >= n // 150
        audio_bytes = result.audio.nbytes
        del result
    assert audio_bytes > 8 * 1024**2  # far above the bound below
    assert peaks[2500] < 2 * 1024**2, peaks
    assert peaks[2500] - peaks[500] < 1024**2, peaks
