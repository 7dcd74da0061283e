"""Speech data preparation: what a voice trainer needs from the clips people upload, done once at
upload so that the Datasets tab shows every clip as training will hear it, with its problems.

    mono → speech found by silero-vad (its model ships in the wheel) → silence trimmed at the ends
         → loudness normalised to TARGET_LUFS (ITU-R BS.1770, pyloudnorm), peaks kept below 0 dBFS
    longer than MAX_CLIP_S → cut at the pauses into parts of at most MAX_CLIP_S, each transcribed
         by pocketsphinx (English only: its wheel ships an English model) and marked so
    no speech at all → kept as uploaded, marked NO_SPEECH (a trainer leaves it out)

Resampling to a model's rate (soxr) happens in the trainer, which knows the rate; `resample` is
here for it. The issues a clip keeps are plain sentences the tab shows beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

VAD_RATE = 16_000  # silero-vad listens at 16 kHz
TARGET_LUFS = -23.0  # EBU R128's programme loudness
PEAK_LIMIT = 0.95  # normalisation never pushes a peak above this
MIN_CLIP_S = 0.5  # shorter clips teach a voice little
MAX_CLIP_S = 15.0  # longer ones are cut at their pauses
PAD_S = 0.1  # silence kept around the speech
CLIPPED_SHARE = 0.001  # this share of samples at full scale means the recording clipped
NO_SPEECH = "no speech found (silero-vad): training leaves it out"


@dataclass
class Part:
    """One prepared clip: mono float32 audio at the upload's rate, and what is wrong with it."""

    audio: np.ndarray
    rate: int
    text: str
    issues: list[str] = field(default_factory=list)
    transcribed: bool = False  # the text is pocketsphinx's, not the uploader's

    @property
    def duration_s(self) -> float:
        return round(len(self.audio) / self.rate, 3)


def to_mono(data: np.ndarray) -> np.ndarray:
    wave = np.asarray(data, dtype=np.float32)
    return wave.mean(axis=1) if wave.ndim == 2 else wave


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    import soxr

    return audio if rate == target else soxr.resample(audio, rate, target).astype(np.float32)


@lru_cache(maxsize=1)
def _vad():
    from silero_vad import load_silero_vad

    return load_silero_vad()


def speech_spans(audio: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """(start_s, end_s) of each stretch of speech silero-vad hears."""
    import torch
    from silero_vad import get_speech_timestamps

    wave = torch.from_numpy(np.ascontiguousarray(resample(audio, rate, VAD_RATE)))
    with torch.inference_mode():
        stamps = get_speech_timestamps(wave, _vad(), sampling_rate=VAD_RATE, return_seconds=True)
    return [(float(s["start"]), float(s["end"])) for s in stamps]


def normalize_loudness(audio: np.ndarray, rate: int, target: float = TARGET_LUFS) -> np.ndarray:
    """Gain to `target` LUFS (clips under BS.1770's 0.4 s block, or silent ones: by RMS instead),
    then down again if a peak would pass PEAK_LIMIT."""
    import pyloudnorm

    loudness = None
    if len(audio) >= int(0.4 * rate):
        measured = pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64))
        loudness = measured if np.isfinite(measured) else None
    if loudness is None:
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) if len(audio) else 0.0
        if rms <= 1e-6:
            return audio
        loudness = 20 * np.log10(rms) - 0.691  # near enough for a short clip
    out = audio * np.float32(10 ** ((target - loudness) / 20))
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    if peak > PEAK_LIMIT:
        out = out * np.float32(PEAK_LIMIT / peak)
    return out.astype(np.float32)


def cut_points(spans: list[tuple[float, float]], max_s: float = MAX_CLIP_S) -> list[tuple[float, float]]:
    """Group consecutive speech spans into parts of at most `max_s`, cutting only in the pauses
    between spans (a single span longer than `max_s` is cut where it must)."""
    parts: list[tuple[float, float]] = []
    start = end = None
    for s, e in spans:
        while e - s > max_s:  # one breath longer than a part: cut it hard
            if start is not None:
                parts.append((start, end))
                start = None
            parts.append((s, s + max_s))
            s += max_s
        if start is None:
            start, end = s, e
        elif e - start <= max_s:
            end = e
        else:
            parts.append((start, end))
            start, end = s, e
    if start is not None:
        parts.append((start, end))
    return parts


def transcribe(audio: np.ndarray, rate: int) -> str:
    """English words pocketsphinx hears ('' for none): the only recogniser that ships offline."""
    from pocketsphinx import Decoder

    from engines.speech.intelligibility import DECODER_RATE, _decode, to_decoder_rate

    return _decode(_english_decoder(DECODER_RATE, Decoder), to_decoder_rate(audio, rate))


@lru_cache(maxsize=1)
def _english_decoder(rate: int, decoder_class):
    return decoder_class(samprate=rate, loglevel="FATAL")


def prepare(data: np.ndarray, rate: int, text: str, *, max_s: float = MAX_CLIP_S) -> list[Part]:
    """One uploaded clip → its prepared parts (the clip as it came, marked, when it holds no speech)."""
    audio = to_mono(data)
    clipped = float(np.mean(np.abs(audio) >= 0.999)) >= CLIPPED_SHARE if len(audio) else False
    spans = speech_spans(audio, rate)
    if not spans:  # kept as it came, so the tab can play it; a trainer leaves it out
        return [Part(audio, rate, text.strip(), [NO_SPEECH])]
    pieces = [(spans[0][0], spans[-1][1])] if spans[-1][1] - spans[0][0] <= max_s else cut_points(spans, max_s)
    total = len(audio) / rate
    parts = []
    for start, end in pieces:
        a, b = max(0.0, start - PAD_S), min(total, end + PAD_S)
        wave = normalize_loudness(audio[int(a * rate): int(b * rate)], rate)
        part = Part(wave, rate, text.strip())
        if len(pieces) > 1:
            part.text, part.transcribed = transcribe(wave, rate), True
            part.issues.append(f"cut from a {total:.1f} s recording at its pauses; transcribed automatically "
                               "(English only): check the words")
        if clipped:
            part.issues.append("the recording clips (samples at full scale): record it again more quietly")
        if part.duration_s < MIN_CLIP_S:
            part.issues.append(f"shorter than {MIN_CLIP_S} s of speech")
        if not part.text:
            part.issues.append("no transcript" + (" (nothing was recognised)" if part.transcribed else ""))
        parts.append(part)
    return parts
