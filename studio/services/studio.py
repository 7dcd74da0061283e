"""`Studio` owns everything shared by all sessions: the store, the model registry, the memory
manager and one instance of each service. The UI and the API receive it; nothing is global."""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from pathlib import Path

from studio.config import StudioConfig
from studio.services.auth import AuthService
from studio.services.changes import RATINGS, Changes
from studio.services.leftovers import REPLICA_MIN_AGE_S, remove_orphans
from studio.services.limits import Admission, RequestGate
from studio.services.scratch import Scratch
from studio.services.settings import SettingsService
from studio.store import adapters as adapter_rows
from studio.store import open_store

log = logging.getLogger("studio")
WARM_UP_WAIT_S = 120.0  # the longest the server's start waits for the default models to load


class Studio:
    def __init__(self, config: StudioConfig):
        self.config = config
        self.data_dir: Path = config.data_dir
        for sub in ("datasets", "runs", "outputs", "models", "tmp"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        self.scratch = Scratch(self.data_dir, config.shared_data_dir)  # the one owner of tmp/
        self._sweep_tmp()
        self.store = open_store(config.database_url, self.data_dir / "studio.db")
        # what the pages watch to redraw their lists (studio/services/changes.py); in the database
        # when replicas may share it
        self.changes = Changes(self.store if self.store.dialect == "postgresql" else None)
        self.settings = SettingsService(config, self.store, self.changes)
        self.settings.load()  # admin settings from earlier runs (precision, content filter)
        self.auth = AuthService(config.accounts, config.guest_access, self.store)
        self.gate = RequestGate(config.max_running, config.max_per_user, config.max_queue)
        self.admission = Admission(config.limits, self.gate)  # every generation passes here
        self._warming: threading.Thread | None = None

    # Services are built on first use so that startup stays light.
    @cached_property
    def models(self):
        from studio.services.models import ModelService

        return ModelService(self.config, self.store)

    @cached_property
    def datasets(self):
        from studio.services.datasets import DatasetService

        return DatasetService(self.config, self.store, changes=self.changes)

    @cached_property
    def jobs(self):
        from studio.services.jobs import JobService

        jobs = JobService(self.config, self.store, dataset_path=lambda ds: self.datasets.path(ds),
                          trained_model_path=self._trained_model_path, resolve_model=self.models.resolve,
                          offline=lambda: self.models.offline, changes=self.changes)
        jobs.preparers["reward"] = lambda base, params, folder: self.feedback_training.prepare_reward(
            base, params, folder)
        jobs.preparers["text-feedback"] = lambda base, params, folder: self.feedback_training.prepare(
            base, params, folder)
        jobs.preparers["export"] = lambda base, params, folder: self.exports.prepare(base, params, folder)
        jobs.preparers["image-export"] = lambda base, params, folder: self.image_exports.prepare(base, params, folder)
        jobs.preparers["speech-finetune"] = lambda base, params, folder: self.speech.trainable_base(base)
        return jobs

    @cached_property
    def exports(self):
        from studio.services.exports import ExportService

        return ExportService(self.text, self.data_dir, self.models.device, self.jobs)

    @cached_property
    def image_exports(self):
        from studio.services.image_exports import ImageExportService

        return ImageExportService(self.jobs, self.data_dir, self.image)

    @cached_property
    def feedback_training(self):
        from studio.services.feedback_training import FeedbackTrainingService

        return FeedbackTrainingService(self.store, self.text, self.data_dir)

    def _trained_model_path(self, model_id: str) -> Path | None:
        """The folder of a trained full model (a `text_model`, `image_model`, `gan` or `speech_model` artifact),
        else None."""
        row = adapter_rows.get(self.store, model_id, "text_model", "image_model", "gan", "speech_model")
        return self.data_dir / row["path"] if row else None

    @cached_property
    def experiments(self):
        from studio.services.experiments import ExperimentService

        return ExperimentService(self.store, self.settings, self._resolve_version, changes=self.changes)

    def _resolve_version(self, kind: str, model: str | None, adapter: str | None) -> tuple[str, str | None]:
        """(model id, adapter id) of a version of `kind`, checked against what exists (404 otherwise)."""
        if kind == "text":
            spec, row = self.text.resolve(model, adapter)
        elif kind == "image":
            spec, row = self.image.resolve(model, adapter)
        else:
            if adapter:
                from studio.services.errors import Invalid

                raise Invalid("Speech versions are models: leave the adapter empty.")
            spec, row = self.speech.resolve(model), None
        return spec.id, row["id"] if row is not None else None

    @cached_property
    def outputs(self):
        from studio.services.outputs import OutputService

        return OutputService(self.data_dir, self.store)

    @cached_property
    def feedback(self):
        from studio.services.feedback import FeedbackService

        return FeedbackService(self.store, self.outputs, on_rated=self._on_rated)

    def _on_rated(self, output_id: str) -> None:
        self.changes.bump(RATINGS)
        self.experiments.on_rating(output_id)

    @cached_property
    def text(self):
        from studio.services.text import TextService

        return TextService(self.models, self.outputs, self.store, self.admission, self.experiments)

    @cached_property
    def arena(self):
        from studio.services.arena import ArenaService

        return ArenaService(self.store, self.outputs, self.text, self.admission, image=self.image, speech=self.speech)

    @cached_property
    def image(self):
        from studio.services.image import ImageService

        return ImageService(self.models, self.outputs, self.store, self.admission, self.experiments)

    @cached_property
    def image_grid(self):
        from studio.services.image_grid import ImageGridService

        return ImageGridService(self.image, self.admission)

    @cached_property
    def speech(self):
        from studio.services.speech import SpeechService

        return SpeechService(self.models, self.outputs, self.store, self.admission, self.experiments)

    @cached_property
    def gan(self):
        from studio.services.gan import GanService

        return GanService(self.models, self.outputs, self.store, self.admission)

    @cached_property
    def adapters(self):
        from studio.services.adapters import AdapterService

        return AdapterService(self.config, self.store, self.models, self.datasets, changes=self.changes)

    def start(self) -> None:
        """Work done at startup, before the server takes requests; the warm-up runs in a thread that
        `wait_warm` waits for."""
        self.models.start_hub_probe()
        self.scratch.keep_alive()  # with replicas: this one's scratch folder stays recognisably in use
        self.jobs.recover()  # first: a job that finished while we were down registers its artifact
        remove_orphans(self.data_dir, self.store, REPLICA_MIN_AGE_S if self.config.shared_data_dir else 0.0)
        self.warm_up()

    def warm_up(self) -> None:
        """Once, in a thread: the default text and image models when they are shipped trained starters
        (small, on disk), so that the first text answer and the first image pay no import or load. The
        server opens its port when this is done (`wait_warm`), as A1111 loads its checkpoint before it
        serves: a request sent the moment the port answers (a script's) would otherwise wait for the
        load. Not earlier than this: the load is mostly imports (transformers' GPT-2 modules: about 4 of
        its 5.5 s here), which hold the GIL, so overlapping it with building the page only made both
        later (measured: the page's build 6.4 s alone, 10.5 s beside the warm-up)."""
        if self._warming is not None:
            return
        text, image = self.text, self.image  # built here, in the caller's thread

        def warm() -> None:
            text.warm_default()
            image.warm_default()

        self._warming = threading.Thread(target=warm, name="warm-up", daemon=True)
        self._warming.start()

    def wait_warm(self, timeout_s: float = WARM_UP_WAIT_S) -> None:
        """Block until the warm-up is done (at most `timeout_s`: a slow disk delays the start, never stops it)."""
        if self._warming is not None:
            self._warming.join(timeout_s)

    def _sweep_tmp(self) -> None:
        """Uploads, exports and builds in flight when an earlier studio died leave scratch folders
        behind: all of tmp/ goes, here in the constructor, before this process writes anything
        there (the UI is built and served later; Gradio recreates its cache folder). Not later
        in `start()`: by then tmp/ holds this process's own files (uploads in flight, Gradio's cache)."""
        self.scratch.sweep()

    def close(self) -> None:
        if "jobs" in self.__dict__:
            self.jobs.shutdown()
        self.changes.close()
        self.store.close()
