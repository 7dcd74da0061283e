"""espeak-ng — classic formant synthesis (not neural) — as a speech backend, through ctypes.

Why hand-written: `espeakng-loader` ships the espeak-ng shared library and its data in a wheel (no
system package, no `espeak` binary), but no binding that makes *audio* with it: the maintained Python
bindings either run the `espeak` program (`espeakng`) or compile against system headers
(`espeak-ng-python`), and phonemizer's wrapper returns phonemes only. So this module calls the
library's own C API — `espeak_Initialize` (synchronous mode), `espeak_SetSynthCallback`,
`espeak_SetVoiceByName`, `espeak_SetParameter`, `espeak_Synth` — and nothing else.

The library holds one global synthesiser per process: it is initialised once, and every call runs
under one lock.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

FAMILY = "espeak-ng"
LABEL = "espeak-ng (classic formant synthesis, not neural)"
DEFAULT_VOICE = "en-us"
BASE_RATE_WPM = 175  # espeak-ng's own default speaking rate; speed 2.0 → 350 words a minute
DEFAULT_PITCH = 50  # espeak-ng's pitch scale is 0–100

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE, _PITCH = 1, 3  # espeak_PARAMETER

_lock = threading.Lock()
_state: dict = {}  # "lib", "rate", "voices" (language code → voice identifier), "callback", "chunks"


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def available() -> bool:
    """Whether the espeak-ng library (the `espeakng-loader` wheel) is installed."""
    try:
        import espeakng_loader  # noqa: F401
    except ImportError:
        return False
    return True


def _library() -> dict:
    """The initialised library (once per process); call under `_lock`."""
    if not _state:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to start (code {rate}).")
        chunks: list[np.ndarray] = []

        def on_audio(wav, n, _events):
            if wav and n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).astype(np.float32) / 32768.0)
            return 0  # 0: go on

        callback = _CALLBACK(on_audio)  # kept alive in _state: the library holds a raw pointer to it
        lib.espeak_SetSynthCallback(callback)
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        listed = lib.espeak_ListVoices(None)
        voices: dict[str, str] = {}
        i = 0
        while listed[i]:
            v = listed[i].contents
            code = v.languages[1:].decode("utf-8", "replace")  # a priority byte, then the language code
            voices.setdefault(code, v.identifier.decode("utf-8", "replace"))
            i += 1
        _state.update(lib=lib, rate=rate, voices=voices, callback=callback, chunks=chunks)
    return _state


def voices() -> list[str]:
    """Language codes of espeak-ng's voices (`en-us` first, then alphabetical)."""
    with _lock:
        codes = sorted(_library()["voices"])
    return [DEFAULT_VOICE, *(c for c in codes if c != DEFAULT_VOICE)]


class Espeak:
    """The backend SpeechEngine drives: same `can_say` / `say` interface as the neural families."""

    controls = ("speed", "pitch")
    speaks_numbers = True  # espeak-ng reads digits in each voice's own language

    def __init__(self):
        with _lock:
            state = _library()
        self.sample_rate = int(state["rate"])  # 22050
        self.voices = voices()
        self.default_noise_scale = None
        self.language = "eng"
        self.model = None  # no torch module: nothing for the memory manager to count

    @staticmethod
    def voice_language(voice: str | None) -> str:
        """'eng' for the English voices (numbers are written out in English), else the voice's code."""
        code = voice or DEFAULT_VOICE
        return "eng" if code.split("-")[0] == "en" else code

    def can_say(self, char: str) -> bool:
        return char.isalnum() or char in "'’-"

    def say(self, text: str, *, voice: str | None, speed: float, noise_scale: float | None = None,
            pitch: float | None = None) -> np.ndarray:
        data = text.encode("utf-8")
        with _lock:
            state = _library()
            lib, chunks = state["lib"], state["chunks"]
            identifier = state["voices"].get(voice or DEFAULT_VOICE, voice or DEFAULT_VOICE)
            if lib.espeak_SetVoiceByName(identifier.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice '{voice}'.")
            lib.espeak_SetParameter(_RATE, int(round(BASE_RATE_WPM * speed)), 0)
            lib.espeak_SetParameter(_PITCH, int(round(DEFAULT_PITCH if pitch is None else pitch)), 0)
            chunks.clear()
            code = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if code != 0:
                raise RuntimeError(f"espeak-ng could not speak the text (code {code}).")
            wave = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
            chunks.clear()
        return wave
