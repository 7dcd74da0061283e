"""Speech generation: resolve the model, synthesise (chunked, any length), write the clip under
outputs/<date>/ and store it as an output before returning."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from engines.registry import ModelSpec, UnknownModel
from studio.services.auth import User
from studio.services.errors import Invalid, NotFound
from studio.services.experiments import ExperimentService
from studio.services.limits import Admission
from studio.services.models import ModelService
from studio.services.outputs import OutputService
from studio.store import Store


class SpeechGenerateParams(BaseModel):
    """The form of POST /speech/generate and of the Speech tab."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(..., min_length=1, max_length=20_000)
    model: str | None = Field(None, max_length=300)
    voice: str | None = Field(None, max_length=100, description="only for models with voices (SpeechT5)")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="speaking rate; 2 = twice as fast")
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    noise_scale: float | None = Field(None, ge=0, le=1.5, description="variability of delivery; empty = model's own")
    pitch: float | None = Field(None, ge=0, le=100, description="voice pitch 0–100 (espeak-ng); empty = its own (50)")
    format: Literal["wav", "flac"] = "wav"


class SpeechService:
    def __init__(self, models: ModelService, outputs: OutputService, store: Store, admission: Admission,
                 experiments: ExperimentService | None = None):
        self.admission = admission
        self.experiments = experiments  # a running experiment serves requests that pin no model
        self.models = models
        self.outputs = outputs
        self.store = store

    @property
    def voices_dir(self) -> Path:
        """Speaker x-vectors (<name>.npy) a user adds for SpeechT5."""
        return self.models.config.data_dir / "models" / "voices"

    def resolve(self, model: str | None) -> ModelSpec:
        try:
            return self.models.resolve(model, "speech")
        except UnknownModel as exc:
            raise NotFound(str(exc), code="unknown_model") from exc

    def trainable_base(self, model: str | None) -> str:
        """The voice a `speech-finetune` job starts from (the starter voice when None); 422 unless it is a
        SpeechT5 voice that trains offline (engines/speech/voice.py)."""
        from engines.speech.voice import is_voice_folder
        from engines.starter.shipped import TRAINED_SPEECH_VOICE

        try:
            spec = self.models.resolve(model or TRAINED_SPEECH_VOICE, "speech")
        except UnknownModel as exc:
            raise Invalid(f"{exc} The starter voice ships with the studio; reinstall it if it is missing.") from exc
        if not is_voice_folder(Path(self.models.registry.location(spec))):
            raise Invalid(f"A speech-finetune job trains a SpeechT5 voice; '{spec.id}' is not one. Pick "
                          f"{TRAINED_SPEECH_VOICE} (the starter voice) or a voice trained here.",
                          code="unknown_model")  # fmt: skip
        return spec.id

    def is_loaded(self, model: str | None) -> bool:
        return self.models.memory.is_loaded(f"speech:{self.resolve(model).id}")

    def describe(self, model: str | None) -> dict:
        """What the model offers — family, language, voices, controls — without loading its weights."""
        from engines.speech import SpeechInputError, available_voices, language_of, model_family

        spec = self.resolve(model)
        location = self.models.registry.location(spec)
        try:
            family = model_family(location)
            voices = available_voices(location, self.voices_dir)
        except SpeechInputError as exc:
            raise Invalid(str(exc)) from exc
        controls = {"vits": ["speed", "noise_scale"], "espeak-ng": ["speed", "pitch"]}.get(family, [])
        label = "espeak-ng (classic formant synthesis, not neural)" if family == "espeak-ng" else None
        return {"model": spec.id, "family": family, "language": language_of(spec.id), "voices": voices,
                "controls": controls, "starter": spec.is_starter, "label": label,
                "random_weights": spec.is_random_starter}

    def engine(self, spec: ModelSpec):
        from engines.memory import module_bytes
        from engines.speech import SpeechEngine, SpeechInputError, language_of

        location = self.models.registry.location(spec)

        precision = self.models.precision_of("speech")

        def load():
            return SpeechEngine(location, device=self.models.device, language=language_of(spec.id),
                                voices_dir=self.voices_dir, dtype=precision, offline=self.models.offline).load()

        try:
            return self.models.loaded_in("speech", f"speech:{spec.id}", load,
                                         size_bytes=lambda e: module_bytes(e.modules))
        except SpeechInputError as exc:  # not a TTS model
            raise Invalid(str(exc)) from exc

    def check(self, params: SpeechGenerateParams, *, user: User) -> None:
        """The size limits alone, so a page can refuse a form before it says "Speaking…"."""
        self.admission.check(user, "speech", {"text": params.text})

    def generate(self, params: SpeechGenerateParams, *, user: User,
                 on_progress: Callable[[int, int], None] | None = None) -> dict:
        assignment = None
        if params.model is None and self.experiments is not None:
            assignment = self.experiments.assign("speech", user.name)
            if assignment is not None:
                params = params.model_copy(update={"model": assignment.model})
        with self.admission.admit(user, "speech", {"text": params.text}):
            result = self._generate_admitted(params, user, on_progress)
        if assignment is not None:
            self.experiments.record(assignment, [o["id"] for o in result["outputs"]])
        return result

    def generate_admitted(self, params: SpeechGenerateParams, *, user: User, output_params: dict | None = None) -> dict:
        """For callers that already hold admission for this work (the arena admits a pair once);
        `output_params` are stored with the output (`arena`: blind until its comparison is voted)."""
        return self._generate_admitted(params, user, None, output_params)

    def _generate_admitted(self, params: SpeechGenerateParams, user: User,
                           on_progress: Callable[[int, int], None] | None, output_params: dict | None = None) -> dict:
        import soundfile as sf

        from engines.speech import SpeechInputError, SpeechRequest

        # 1. Model and engine (loaded once, kept by the memory manager)
        spec = self.resolve(params.model)
        self.admission.require()
        engine = self.engine(spec)
        t0 = time.perf_counter()

        # 2. Synthesise; what the caller must fix is a 422, before anything touches the disk
        request = SpeechRequest(text=params.text, voice=params.voice, speed=params.speed,
                                noise_scale=params.noise_scale, seed=params.seed, pitch=params.pitch)
        try:
            result = engine.synthesize(request, on_progress=on_progress)
        except SpeechInputError as exc:
            raise Invalid(str(exc)) from exc

        # 3. Write the clip and store the output before answering
        output_id, path = self.outputs.new_file_path(f".{params.format}")
        stored_params = {
            "speed": params.speed, "noise_scale": result.noise_scale, "voice": result.voice, "pitch": params.pitch,
            "format": params.format, "sample_rate": result.sample_rate,
            "duration_s": round(result.duration_s, 3), "chunks": result.chunks, **(output_params or {}),
        }
        try:
            sf.write(path, result.audio, result.sample_rate, subtype="PCM_16", format=params.format.upper())
            row = self.outputs.record(kind="speech", prompt=params.text, params=stored_params, model=spec.id,
                                      adapter=None, seed=result.seed, user=user.name, file=path, output_id=output_id)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return {
            "outputs": [{"id": row["id"], "url": row["url"], "sample_rate": result.sample_rate,
                         "duration_s": round(result.duration_s, 3), "seed": result.seed}],
            "model": spec.id,
            "elapsed_s": round(time.perf_counter() - t0, 4),
            "warnings": result.warnings,
            "chunks": result.chunks,
            "spoken_as": result.spoken_text,  # the text after normalisation ("12" → "twelve")
            "starter": spec.is_starter,
            "random_weights": spec.is_random_starter,  # a starter that makes noise until trained
        }
