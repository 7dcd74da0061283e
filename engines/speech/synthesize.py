"""Text to speech for any length of text: VITS / MMS-TTS (and SpeechT5) through transformers.

The model's `config.json` decides the family: `vits` → `VitsModel` + its character tokenizer;
`speecht5` → `SpeechT5ForTextToSpeech` + the HiFi-GAN vocoder + a speaker embedding (the voices), or, for
a voice trained here (engines/speech/voice.py), its own speakers and Griffin-Lim; `espeak-ng` → the
classic engine. The families sit behind one small backend interface (`can_say`, `say`), so chunking,
seeding and joining live here once.

A little over ~450 lines: the backends are small and belong with the chunking and joining they share.
"""

from __future__ import annotations

import io
import json
import mmap
import random
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.precision import count_params, load_dtype, resolve_precision
from engines.precision import normalize as normalize_precision
from engines.registry import is_starter_id
from engines.speech import espeak
from engines.speech.text_normalize import normalize_english, split_for_speech, tidy_whitespace

ENGLISH = ("eng", "en")
MAX_CHUNK_CHARS = 400  # a sentence longer than this is cut at commas, then between words
MAX_LISTED_CHARS = 20  # unsayable characters named in a warning


@dataclass
class SpeechRequest:
    text: str
    voice: str | None = None  # one of `SpeechEngine.voices()`; None → the model's default voice
    speed: float = 1.0  # speaking rate: 2.0 says the same text in half the time
    noise_scale: float | None = None  # variability of delivery (VITS); None → the model's own
    seed: int | None = None  # same seed + same settings → the same samples
    pitch: float | None = None  # 0–100, espeak-ng only; None → its own (50)


@dataclass
class SpeechResult:
    audio: np.ndarray  # (samples,) float32 in [-1, 1]
    sample_rate: int
    duration_s: float
    seed: int
    warnings: list[str]
    chunks: int  # pieces the text was synthesised in
    elapsed_s: float
    noise_scale: float | None = None  # what was used; None where the model has no such control
    voice: str | None = None
    spoken_text: str = ""  # the text after normalisation, as it was handed to the model


class SpeechInputError(ValueError):
    """The request cannot be spoken as asked (nothing sayable, unknown voice …): the caller's to fix."""


# -- which model is it ------------------------------------------------------------------------------
def _config(location: str | Path) -> dict:
    folder = Path(location)
    if (folder / "config.json").is_file():
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(location)).to_dict()


def model_family(location: str | Path) -> str:
    """'vits', 'speecht5' or 'espeak-ng', from the model's config.json (a folder or a hub id)."""
    model_type = _config(location).get("model_type")
    if model_type not in ("vits", "speecht5", espeak.FAMILY):
        raise SpeechInputError(f"'{location}' is a '{model_type}' model; speech needs a VITS or SpeechT5 model.")
    return model_type


def available_voices(location: str | Path, voices_dir: Path | None = None) -> list[str]:
    """The voices a model offers, from its config alone (no weights loaded); [] for single-voice models."""
    config = _config(location)
    if model_family(location) == "speecht5":
        from engines.speech.voice import is_voice_folder

        folder = Path(location)
        return _SpeechT5.voice_names(voices_dir, folder if is_voice_folder(folder) else None)
    if model_family(location) == espeak.FAMILY:
        return espeak.voices()
    n = int(config.get("num_speakers", 1))
    return [f"speaker {i}" for i in range(n)] if n > 1 else []


def language_of(model_id: str) -> str | None:
    """ISO 639-3 code a model speaks when its id tells: facebook/mms-tts-fra → 'fra'; starter, SpeechT5 → 'eng'."""
    found = re.search(r"mms-tts-([a-z]{3})\b", model_id)
    if found:
        return found[1]
    if is_starter_id(model_id) or "speecht5" in model_id:
        return "eng"
    return None


# -- the two families ---------------------------------------------------------------------------------
class _Vits:
    """VITS / MMS-TTS: characters in, waveform out; speed and variability are model controls."""

    controls = ("speed", "noise_scale")

    def __init__(self, location: str, device: str, precision: str):
        import torch
        from transformers import AutoTokenizer, VitsModel

        self.tokenizer = AutoTokenizer.from_pretrained(location)
        wanted = load_dtype(precision, device)
        model = VitsModel.from_pretrained(location, dtype=wanted or torch.float32)
        self.dtype = wanted or resolve_precision(precision, device, num_params=count_params(model))
        self.model = model.to(device=device, dtype=self.dtype).eval()
        self.device = device
        self.sample_rate = int(self.model.config.sampling_rate)
        self.default_noise_scale = float(self.model.noise_scale)
        n = int(self.model.config.num_speakers)
        self.voices = [f"speaker {i}" for i in range(n)] if n > 1 else []
        self.language = getattr(self.tokenizer, "language", None)
        self._vocab = set(self.tokenizer.get_vocab())

    def can_say(self, char: str) -> bool:
        tok = self.tokenizer
        if getattr(tok, "phonemize", False):  # espeak turns letters into the IPA vocabulary
            return char.isalpha() or char in self._vocab
        if getattr(tok, "is_uroman", False) and ord(char) > 127:  # romanised before lookup
            return char.isalpha()
        return (char.lower() if tok.normalize else char) in self._vocab

    def say(self, text: str, *, voice: str | None, speed: float, noise_scale: float | None):
        import torch

        inputs = self.tokenizer(text, return_tensors="pt").to(self.device)  # (1, 2·chars + 1) with blanks
        speaker = self.voices.index(voice) if voice else None
        self.model.noise_scale = self.default_noise_scale if noise_scale is None else noise_scale
        try:
            out = self.model(**inputs, speaker_id=speaker, speaking_rate=speed)
        finally:  # a request's variability never leaks into the next one
            self.model.noise_scale = self.default_noise_scale
        wave = out.waveform[0]  # (samples,)
        return wave.to(torch.float32).cpu().numpy()


class _SpeechT5:
    """SpeechT5: text → mel frames (autoregressive) → HiFi-GAN waveform; the voice is an x-vector."""

    controls: tuple[str, ...] = ()
    VOCODER = "microsoft/speecht5_hifigan"
    XVECTORS = ("Matthijs/cmu-arctic-xvectors", "spkrec-xvect.zip")  # one 512-d .npy per utterance
    SPEAKERS = {"slt": "US female", "clb": "US female", "bdl": "US male", "rms": "US male",
                "jmk": "Canadian male", "awb": "Scottish male", "ksp": "Indian male"}

    def __init__(self, location: str, device: str, voices_dir: Path | None, precision: str, offline: bool):
        import torch
        from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Processor

        from engines.speech import voice as own_voice

        self.offline = offline  # the vocoder and the x-vectors come from the hub cache only
        self.processor = SpeechT5Processor.from_pretrained(location)
        wanted = load_dtype(precision, device)
        model = SpeechT5ForTextToSpeech.from_pretrained(location, dtype=wanted or torch.float32)
        folder = Path(location)
        local_vocoder = folder / "vocoder"
        # a voice trained here (engines/speech/voice.py) ships its speakers, and Griffin-Lim in place of HiFi-GAN
        self.own_folder = folder if own_voice.is_voice_folder(folder) else None
        vocoder = None
        if local_vocoder.is_dir() or self.own_folder is None:
            vocoder_from = str(local_vocoder) if local_vocoder.is_dir() else self.VOCODER
            vocoder = SpeechT5HifiGan.from_pretrained(vocoder_from, dtype=wanted or torch.float32,
                                                      local_files_only=offline)
        self.dtype = wanted or resolve_precision(precision, device, num_params=count_params(
            model, *([vocoder] if vocoder is not None else [])))
        self.model = model.to(device=device, dtype=self.dtype).eval()
        self.vocoder = vocoder.to(device=device, dtype=self.dtype).eval() if vocoder is not None else None
        self.device = device
        self.sample_rate = int(self.vocoder.config.sampling_rate) if self.vocoder is not None else own_voice.SAMPLE_RATE
        self.default_noise_scale = None
        self.language = "eng"
        self.voices_dir = voices_dir
        self.voices = self.voice_names(voices_dir, self.own_folder)
        self._embeddings: dict[str, Any] = {}
        self._sayable: dict[str, bool] = {}

    @classmethod
    def voice_names(cls, voices_dir: Path | None, own_folder: Path | None = None) -> list[str]:
        """A voice trained here: its own speakers. Else x-vectors dropped into `voices_dir` as <name>.npy,
        then the CMU ARCTIC speakers."""
        if own_folder is not None:
            from engines.speech.voice import voice_names

            return voice_names(own_folder)
        own = sorted(p.stem for p in voices_dir.glob("*.npy")) if voices_dir and voices_dir.is_dir() else []
        return own + [v for v in cls.SPEAKERS if v not in own]

    def can_say(self, char: str) -> bool:
        if char not in self._sayable:
            tok = self.processor.tokenizer
            ids = tok(char, add_special_tokens=False).input_ids
            self._sayable[char] = bool(ids) and tok.unk_token_id not in ids
        return self._sayable[char]

    def _embedding(self, voice: str):
        import torch

        if voice not in self._embeddings:
            own = self.voices_dir / f"{voice}.npy" if self.voices_dir else None
            if self.own_folder is not None:
                from engines.speech.voice import speaker_vector

                vector = speaker_vector(self.own_folder, voice)
            elif own is not None and own.is_file():
                vector = np.load(own)
            else:  # a CMU ARCTIC speaker: the first of their utterances in the x-vector archive
                import zipfile

                from huggingface_hub import hf_hub_download

                archive = hf_hub_download(self.XVECTORS[0], self.XVECTORS[1], repo_type="dataset",
                                          local_files_only=self.offline)
                with zipfile.ZipFile(archive) as z:
                    name = sorted(n for n in z.namelist() if f"_{voice}_" in n and n.endswith(".npy"))[0]
                    vector = np.load(io.BytesIO(z.read(name)))
            self._embeddings[voice] = torch.tensor(vector, dtype=torch.float32).reshape(1, -1)  # (1, 512)
        return self._embeddings[voice].to(device=self.device, dtype=self.dtype)

    def say(self, text: str, *, voice: str | None, speed: float, noise_scale: float | None):
        from engines.speech.voice import synthesize

        speaker = self._embedding(voice or (self.voices[0] if self.own_folder is not None else "slt"))
        return synthesize(self.model, self.processor, text, speaker, vocoder=self.vocoder)  # (samples,)


# -- joining ------------------------------------------------------------------------------------------
class _AudioBuffer:
    """The joined clip, in one anonymous memory map that grows in place (mremap) as chunks are copied in
    and freed: the only memory that grows with the text is the audio itself, held once — no list of
    chunks to concatenate, no copy-on-grow, and nothing for the allocator to keep after the clip is gone."""

    ITEM = 4  # bytes per float32 sample

    def __init__(self, capacity: int):
        self._map = self._new_map(max(capacity, 1) * self.ITEM)
        self.size = 0  # samples written

    @staticmethod
    def _new_map(length: int) -> mmap.mmap:
        if hasattr(mmap, "MAP_PRIVATE"):  # private: a shared anonymous map cannot grow (SIGBUS past its end)
            return mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | getattr(mmap, "MAP_ANONYMOUS", 0))
        return mmap.mmap(-1, length)

    def _view(self, start: int, end: int) -> np.ndarray:
        return np.frombuffer(self._map, dtype=np.float32, count=end - start, offset=start * self.ITEM)

    def _reserve(self, extra: int) -> int:
        end = self.size + extra
        if end * self.ITEM > len(self._map):
            # grow geometrically: untouched pages cost address space, not memory
            new_len = max(end * self.ITEM, len(self._map) * 3 // 2)
            try:
                self._map.resize(new_len)  # Linux: mremap moves page tables, copies nothing
            except (OSError, SystemError, TypeError, ValueError):  # no mremap here: copy once into a bigger map
                bigger = self._new_map(new_len)
                np.frombuffer(bigger, dtype=np.float32, count=self.size)[:] = self._view(0, self.size)
                self._map.close()
                self._map = bigger
        return end

    def append(self, samples: np.ndarray) -> None:
        end = self._reserve(len(samples))
        np.clip(samples, -1.0, 1.0, out=self._view(self.size, end))
        self.size = end

    def silence(self, samples: int) -> None:
        end = self._reserve(samples)
        self._view(self.size, end)[:] = 0.0
        self.size = end

    def finish(self) -> np.ndarray:
        """The clip as one float32 array; the map lives as long as the array does."""
        return self._view(0, self.size)


# -- the engine ---------------------------------------------------------------------------------------
class SpeechEngine:
    """One TTS model, loaded once; `synthesize` turns any length of text into one clip.

    `dtype` is a precision choice (`auto`, `fp32`, `bf16`, `fp16`, see engines/precision.py); after
    loading, `dtype` tells what the model runs in. The waveform always comes back as float32."""

    def __init__(self, location: str | Path, device: str = "cpu", *, language: str | None = None,
                 voices_dir: Path | None = None, max_chunk_chars: int = MAX_CHUNK_CHARS, dtype: str = "fp32",
                 offline: bool = False):
        self.location = str(location)
        self.offline = offline  # never ask the hub for what the model needs besides its folder
        self.device = device
        self.precision = normalize_precision(dtype)  # what was asked for: auto | fp32 | bf16 | fp16
        self.voices_dir = voices_dir
        self.max_chunk_chars = max_chunk_chars
        self._language = language
        self.family: str | None = None
        self.backend: Any = None  # _Vits | _SpeechT5 | espeak.Espeak
        self._lock = threading.Lock()  # one synthesis at a time: controls are set on the shared model

    def load(self) -> SpeechEngine:
        if self.backend is None:
            self.family = model_family(self.location)
            if self.family == "vits":
                self.backend = _Vits(self.location, self.device, self.precision)
            elif self.family == espeak.FAMILY:
                self.backend = espeak.Espeak()
            else:
                self.backend = _SpeechT5(self.location, self.device, self.voices_dir, self.precision, self.offline)
        return self

    @property
    def modules(self) -> tuple:
        """The torch modules held (for memory accounting)."""
        self.load()
        return tuple(m for m in (getattr(self.backend, "model", None), getattr(self.backend, "vocoder", None)) if m is not None)

    @property
    def sample_rate(self) -> int:
        return self.load().backend.sample_rate

    @property
    def dtype(self) -> str:
        """What the model runs in, e.g. "float32" (loads the model)."""
        from engines.precision import dtype_name

        return dtype_name(self.load().backend.dtype)

    @property
    def language(self) -> str | None:
        return self._language or self.load().backend.language

    def voices(self) -> list[str]:
        return list(self.load().backend.voices)

    # -- text -----------------------------------------------------------------------------------------
    def prepare_text(self, text: str, voice: str | None = None) -> tuple[str, list[str], list[str]]:
        """(text as the model will read it, warnings, characters dropped because the model cannot say them).

        English text has its numbers, dates, money and abbreviations written out first."""
        backend = self.load().backend
        warnings: list[str] = []
        language = getattr(backend, "voice_language", lambda _v: None)(voice) or self.language  # espeak-ng
        if language in ENGLISH:
            text = normalize_english(text)
        else:
            text = tidy_whitespace(text)
            if any(c.isdigit() for c in text) and not getattr(backend, "speaks_numbers", False):
                warnings.append(f"Numbers are written out as words for English only; this model speaks "
                                f"'{language or 'an unknown language'}', so digits were left as they are. "
                                "Write numbers as words to be sure they are spoken.")
        # anything the model lacks that is not punctuation or spacing is reported, then dropped
        unsayable = [c for c in dict.fromkeys(text)  # first-seen order, no repeats
                     if not c.isspace() and not _is_silent(c) and not backend.can_say(c)]
        if unsayable:
            warnings.append(f"This model cannot say these characters, so they were left out: {_listed(unsayable)}.")
            dropped = set(unsayable)
            text = tidy_whitespace("".join(c for c in text if c not in dropped))
        return text, warnings, unsayable

    # -- synthesis ------------------------------------------------------------------------------------
    def synthesize(self, request: SpeechRequest, *,
                   on_progress: Callable[[int, int], None] | None = None) -> SpeechResult:
        import torch

        # 1. Check inputs
        backend = self.load().backend
        t0 = time.perf_counter()
        if not 0.25 <= request.speed <= 4.0:
            raise SpeechInputError("speed must be between 0.25 and 4.")
        if request.noise_scale is not None and not 0.0 <= request.noise_scale <= 2.0:
            raise SpeechInputError("noise_scale must be between 0 and 2.")
        if request.pitch is not None and not 0.0 <= request.pitch <= 100.0:
            raise SpeechInputError("pitch must be between 0 and 100.")
        voice = request.voice or None
        if voice is not None and voice not in backend.voices:
            if not backend.voices:
                raise SpeechInputError(f"This model has a single voice; leave voice empty (got '{voice}').")
            raise SpeechInputError(f"Unknown voice '{voice}'. Voices: {', '.join(backend.voices)}.")
        warnings: list[str] = []
        if request.speed != 1.0 and "speed" not in backend.controls:
            warnings.append(f"This {self.family} model has no speed control; speed was ignored.")
        if request.noise_scale is not None and "noise_scale" not in backend.controls:
            warnings.append(f"This {self.family} model has no variability control; noise_scale was ignored.")
        if request.pitch is not None and "pitch" not in backend.controls:
            warnings.append(f"This {self.family} model has no pitch control; pitch was ignored.")
        extra = {"pitch": request.pitch} if "pitch" in backend.controls else {}

        # 2. Normalise, drop what cannot be said, cut into sentence chunks
        text, text_warnings, unsayable = self.prepare_text(request.text, voice)
        warnings += text_warnings
        chunks = [(c, self._sayable_part(c.text)) for c in split_for_speech(text, self.max_chunk_chars)]
        total = sum(1 for _, say in chunks if say)
        if total == 0:
            if unsayable:
                raise SpeechInputError(f"There is nothing this model can say in the text: it cannot say "
                                       f"{_listed(unsayable)}. Write the text in letters the model knows.")
            raise SpeechInputError("There is nothing to say: the text has no letters or numbers.")

        # 3. Seed: an explicit seed reproduces; otherwise a fresh one is drawn and reported
        seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**31)
        noise_scale = request.noise_scale if "noise_scale" in backend.controls else None
        used_noise = backend.default_noise_scale if noise_scale is None else noise_scale  # None: no such control
        pause_speed = request.speed if "speed" in backend.controls else 1.0  # pauses follow the speaking rate
        rate = backend.sample_rate
        buffer = _AudioBuffer(capacity=rate * 10)

        # 4. Synthesise chunk by chunk; only the joined float32 audio outlives a chunk
        done = 0
        if on_progress is not None:
            on_progress(0, total)
        with self._lock, torch.inference_mode(), \
                torch.random.fork_rng(devices=[] if self.device == "cpu" else None):
            torch.manual_seed(seed)
            for chunk, say in chunks:
                if say:
                    wave = backend.say(say, voice=voice, speed=request.speed, noise_scale=noise_scale, **extra)
                    buffer.append(wave)
                    del wave
                    done += 1
                    if on_progress is not None:
                        on_progress(done, total)
                buffer.silence(int(round(chunk.pause_s * rate / pause_speed)))

        # 5. One clip
        audio = buffer.finish()
        return SpeechResult(
            audio=audio, sample_rate=rate, duration_s=len(audio) / rate, seed=seed, warnings=warnings,
            chunks=total, elapsed_s=time.perf_counter() - t0, noise_scale=used_noise, voice=voice,
            spoken_text=text,
        )

    def _sayable_part(self, text: str) -> str:
        """The chunk with characters outside the vocabulary removed; '' when no word is left to say."""
        kept = "".join(c for c in text if c.isspace() or self.backend.can_say(c))
        return kept.strip() if any(c.isalnum() for c in kept) else ""


def _listed(chars: list[str]) -> str:
    more = f" and {len(chars) - MAX_LISTED_CHARS} more" if len(chars) > MAX_LISTED_CHARS else ""
    return " ".join(chars[:MAX_LISTED_CHARS]) + more


def _is_silent(char: str) -> bool:
    """Punctuation, separators and control/format characters: they shape pauses or nothing; never "said"."""
    category = unicodedata.category(char)
    return category.startswith(("P", "Z")) or category in ("Cc", "Cf")


__all__ = ["SpeechEngine", "SpeechRequest", "SpeechResult", "SpeechInputError", "available_voices", "model_family",
           "language_of"]
