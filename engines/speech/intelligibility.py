"""How intelligible a speech model is, measured offline with pocketsphinx (its wheel ships an English
acoustic model, dictionary and language model).

- closed set: which of 10 known sentences was spoken? pocketsphinx decodes each clip against a JSGF
  grammar whose only sentences are the 10; a clip counts when the grammar's answer is the sentence
  said. Chance is 1 in 10; white noise gets about that, or nothing (no path through the grammar).
- open vocabulary: pocketsphinx's general English language model, and the word error rate (jiwer)
  of what it heard against what was said — for reference: pocketsphinx's own WER is high even on
  clean human speech, so this number compares models, it does not grade one alone.

Audio is resampled (soxr) to 16 kHz mono, the decoder's rate.

    python -m engines.speech.intelligibility [--model starter/espeak-ng] [--noise]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

DECODER_RATE = 16_000
# Plain everyday sentences, all words in pocketsphinx's dictionary; nothing was tuned on them.
SENTENCES = (
    "the cat sat on the mat",
    "please open the window",
    "my brother likes green apples",
    "we will meet at the station tomorrow",
    "the weather is cold today",
    "turn off the kitchen light",
    "she reads a book every night",
    "how much does this cost",
    "the children played in the garden",
    "i would like a cup of tea",
)


@dataclass
class Intelligibility:
    identified: int  # sentences the closed-set decoder named right
    rejected: int  # clips the grammar found no sentence in
    total: int
    wer: float  # open-vocabulary word error rate (0 = every word heard right)
    heard: list[str]  # the closed-set answers, in SENTENCES order ('' = rejected)
    elapsed_s: float


def to_decoder_rate(audio: np.ndarray, sample_rate: int) -> bytes:
    """16 kHz mono 16-bit PCM, as pocketsphinx's process_raw wants it."""
    import soxr

    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if sample_rate != DECODER_RATE:
        wave = soxr.resample(wave, sample_rate, DECODER_RATE)
    return (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16).tobytes()


def _grammar(sentences: tuple[str, ...]) -> str:
    return "#JSGF V1.0;\ngrammar closed;\npublic <s> = " + " | ".join(f"( {s} )" for s in sentences) + ";\n"


def _decode(decoder, pcm: bytes) -> str:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return re.sub(r"\s+", " ", hyp.hypstr).strip() if hyp is not None else ""


def measure(speak: Callable[[str], tuple[np.ndarray, int]], sentences: tuple[str, ...] = SENTENCES,
            *, open_vocabulary: bool = True) -> Intelligibility:
    """`speak(text) → (audio, sample_rate)`; closed-set identification and open-vocabulary WER."""
    import jiwer
    from pocketsphinx import Decoder

    t0 = time.perf_counter()
    clips = [to_decoder_rate(*speak(s)) for s in sentences]
    closed = Decoder(samprate=DECODER_RATE, lm=None, jsgf=None, loglevel="FATAL")
    closed.add_jsgf_string("closed", _grammar(sentences))
    closed.activate_search("closed")
    heard = [_decode(closed, pcm) for pcm in clips]
    identified = sum(h == s for h, s in zip(heard, sentences, strict=True))
    wer = float("nan")
    if open_vocabulary:
        general = Decoder(samprate=DECODER_RATE, loglevel="FATAL")  # the shipped en-us language model
        said = [_decode(general, pcm) for pcm in clips]
        wer = float(jiwer.wer(list(sentences), [s or "<nothing>" for s in said]))
    return Intelligibility(identified=identified, rejected=sum(not h for h in heard), total=len(sentences),
                           wer=round(wer, 3), heard=heard, elapsed_s=round(time.perf_counter() - t0, 2))


def white_noise(seconds: float = 2.0, seed: int = 0) -> Callable[[str], tuple[np.ndarray, int]]:
    """A `speak` that ignores the text: white noise, the floor a model must beat."""
    rng = np.random.default_rng(seed)
    return lambda _text: ((rng.standard_normal(int(seconds * DECODER_RATE)) * 0.1).astype(np.float32),
                          DECODER_RATE)


def engine_speaker(location: str, **request) -> Callable[[str], tuple[np.ndarray, int]]:
    """A `speak` over a SpeechEngine folder (a starter or a downloaded model)."""
    from engines.speech import SpeechEngine, SpeechRequest

    engine = SpeechEngine(location).load()

    def speak(text: str):
        result = engine.synthesize(SpeechRequest(text=text, seed=0, **request))
        return result.audio, result.sample_rate

    return speak


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="starter/espeak-ng", help="a speech model id the studio lists")
    parser.add_argument("--noise", action="store_true", help="measure white noise instead (the floor)")
    parser.add_argument("--data-dir", default=os.environ.get("STUDIO_DATA_DIR", "studio-data"),
                        help="the studio's data dir (where starter models are built)")
    args = parser.parse_args(argv)
    if args.noise:
        speak = white_noise()
    else:
        from engines.registry import ModelRegistry

        registry = ModelRegistry(Path(args.data_dir) / "models", offline=True)
        spec = registry.resolve(args.model, "speech")
        speak = engine_speaker(registry.location(spec))
    print(json.dumps(asdict(measure(speak)), indent=2))


if __name__ == "__main__":
    main()
