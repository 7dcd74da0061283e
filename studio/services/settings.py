"""Admin settings changed while the studio runs — the precision of each engine and the image
content filter — kept in the store so that a restart keeps them. They live on `StudioConfig`,
which every service reads on each request; this service applies the stored values at start and
records each change (and, with replicas on one database, applies the changes made through the others)."""

from __future__ import annotations

import logging
from typing import Any

from studio.config import StudioConfig
from studio.services.changes import SETTINGS, Changes
from studio.services.errors import Invalid
from studio.store import Store
from studio.store import settings as table

log = logging.getLogger("studio.settings")

PRECISION_KINDS = ("text", "image", "speech")  # engines with a precision setting


class SettingsService:
    def __init__(self, config: StudioConfig, store: Store, changes: Changes | None = None):
        self.config = config
        self.store = store
        self.changes = changes or Changes()
        self.changes.watch(SETTINGS, self.load)  # a change made through another replica

    def load(self) -> None:
        """Apply what was stored over the defaults; a value that no longer validates is skipped."""
        from engines.precision import normalize

        for key, value in table.all_(self.store).items():
            try:
                kind = key.removeprefix("precision.")
                if key.startswith("precision.") and kind in PRECISION_KINDS:
                    choice = normalize(value)
                    if choice == "int8" and kind != "text":
                        raise ValueError(choice)
                    self.config.precision[kind] = choice
                elif key == "image_content_filter":
                    self.config.image_content_filter = bool(value)
                elif key.startswith("default_model."):
                    self.config.default_models[key.removeprefix("default_model.")] = str(value)
            except ValueError:
                log.warning("ignoring the stored setting %s=%r", key, value)

    def _store(self, key: str, value: Any, user: str | None) -> None:
        table.put(self.store, key, value, user)
        self.changes.bump(SETTINGS)

    def precision_of(self, kind: str) -> str:
        """One engine kind's setting: auto | fp32 | bf16 | fp16 (| int8 for text)."""
        return self.config.precision.get(kind, "auto")

    def set_precision(self, kind: str, choice: str, user: str | None = None) -> str:
        """Change one engine kind's precision (kept across restarts); a loaded model of that kind
        reloads in it on its next request."""
        from engines.precision import normalize

        if kind not in PRECISION_KINDS:
            raise Invalid(f"Precision is set per engine: one of {', '.join(PRECISION_KINDS)}, not '{kind}'.")
        try:
            choice = normalize(choice)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        if choice == "int8" and kind != "text":
            raise Invalid(f"int8 (weight-only) is a text precision; {kind} takes auto, fp32, bf16 or fp16.")
        self._store(f"precision.{kind}", choice, user)
        self.config.precision[kind] = choice
        return choice

    def set_default_model(self, kind: str, model_id: str, user: str | None = None) -> str:
        """The model a request of this kind gets when it names none (the caller checked that it exists);
        kept across restarts. A model that disappears later falls back to the usual default."""
        self._store(f"default_model.{kind}", model_id, user)
        self.config.default_models[kind] = model_id
        return model_id

    def set_content_filter(self, on: bool, user: str | None = None) -> bool:
        """Switch the image content filter (the model's safety checker) on or off, kept across restarts."""
        self._store("image_content_filter", bool(on), user)
        self.config.image_content_filter = bool(on)
        return bool(on)
