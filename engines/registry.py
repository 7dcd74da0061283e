"""Model ids → where the weights come from: the hub, a local folder, a starter model or a trained
artifact. Engines ask the registry for a `ModelSpec` and load from `spec.location`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engines import hub, starter
from engines.starter import shipped

Kind = Literal["text", "image", "gan", "speech"]
Source = Literal["hub", "local", "starter", "trained", "remote"]
KINDS: tuple[Kind, ...] = ("text", "image", "gan", "speech")

# Fewer weights than this make a starter-sized model: on a CPU one thread trains it fastest (syncing
# threads costs more than its small matrices save), reduced precision gains nothing, and training it
# from random weights wants a larger learning rate.
TINY_MODEL_PARAMS = 20_000_000
DISTILLED_MARKER = "turbo"  # few-step distilled models (SD-Turbo, SDXL-Turbo …) carry it in their id

# Real models, loaded by hub id through the normal from_pretrained path when the hub is reachable
# (or already cached). The first of each kind is the default.
HUB_MODELS: dict[str, list[tuple[str, str]]] = {
    "text": [
        ("openai-community/gpt2", "config.json"),
        ("distilbert/distilgpt2", "config.json"),
        ("openai-community/gpt2-medium", "config.json"),
    ],
    "image": [
        ("stabilityai/sd-turbo", "model_index.json"),
        ("stable-diffusion-v1-5/stable-diffusion-v1-5", "model_index.json"),
    ],
    "speech": [
        ("facebook/mms-tts-eng", "config.json"),
        ("facebook/mms-tts-fra", "config.json"),
        ("facebook/mms-tts-deu", "config.json"),
        ("facebook/mms-tts-spa", "config.json"),
        ("microsoft/speecht5_tts", "config.json"),
    ],
    "gan": [],
}


@dataclass(frozen=True)
class ModelSpec:
    id: str
    kind: Kind
    source: Source
    location: str  # hub id, or a folder / file path
    base_model: str | None = None  # for trained artifacts
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_starter(self) -> bool:
        """A starter model (engines/starter/): a trained starter shipped with the studio, or a tiny
        random-weight fixture; small either way, and never a hub model."""
        return self.source == "starter"

    @property
    def is_random_starter(self) -> bool:
        """A tiny starter with random weights: it makes noise, and training it starts from nothing."""
        return self.source == "starter" and not shipped.is_trained_starter(self.id)

    @property
    def is_distilled(self) -> bool:
        """A few-step distilled model: a handful of denoising steps and no guidance are its best."""
        return DISTILLED_MARKER in self.id.lower()


def is_starter_id(model_id: str) -> bool:
    """Whether `model_id` names a starter model, for callers that hold an id rather than a spec."""
    return model_id in shipped.all_starter_ids()


class UnknownModel(KeyError):
    def __init__(self, model_id: str, kind: str, available: list[str]):
        self.model_id, self.kind, self.available = model_id, kind, available
        super().__init__(model_id)

    def __str__(self) -> str:
        listed = ", ".join(self.available) or "none"
        return f"Unknown {self.kind} model '{self.model_id}'. Available {self.kind} models: {listed}."


class ModelRegistry:
    def __init__(self, models_root: Path, *, offline: bool = False):
        self.models_root = Path(models_root)
        self.offline = offline
        self._trained: dict[str, ModelSpec] = {}
        self.remote: list[ModelSpec] = []  # served elsewhere (remote/<name>); never the default by itself
        self._lock = threading.Lock()

    # -- registration of trained artifacts (by the service layer, from the store) ------------
    def register(self, spec: ModelSpec) -> None:
        with self._lock:
            self._trained[spec.id] = spec

    def unregister(self, model_id: str) -> None:
        with self._lock:
            self._trained.pop(model_id, None)

    # -- discovery -----------------------------------------------------------------------------
    def list(self, kind: Kind) -> list[ModelSpec]:
        specs: list[ModelSpec] = []
        for repo_id, marker in HUB_MODELS.get(kind, []):
            if not self.offline or hub.is_cached(repo_id, marker):
                specs.append(ModelSpec(repo_id, kind, "hub", repo_id))
        specs.extend(self._local(kind))
        for starter_id in shipped.listed_starters(kind):
            if shipped.is_trained_starter(starter_id):
                folder, meta = shipped.shipped_path(starter_id), {"card": shipped.read_card(starter_id)}
            else:
                folder, meta = starter.starter_path(starter_id, self.models_root), {}
            specs.append(ModelSpec(starter_id, kind, "starter", str(folder), meta=meta))
        with self._lock:
            specs.extend(s for s in self._trained.values() if s.kind == kind)
        specs.extend(s for s in self.remote if s.kind == kind)
        return specs

    def _local(self, kind: Kind) -> list[ModelSpec]:
        """Folders a user dropped into models/local/<kind>/, and single-file SD checkpoints."""
        specs = []
        folder = self.models_root / "local" / kind
        if folder.is_dir():
            for child in sorted(folder.iterdir()):
                if child.is_dir() and not child.name.startswith("."):
                    specs.append(ModelSpec(f"local/{kind}/{child.name}", kind, "local", str(child)))
                elif kind == "image" and child.suffix == ".safetensors":
                    specs.append(ModelSpec(f"local/{kind}/{child.name}", kind, "local", str(child)))
        if kind == "image":
            for child in sorted(self.models_root.glob("*.safetensors")):
                specs.append(ModelSpec(f"local/{kind}/{child.name}", kind, "local", str(child)))
        return specs

    def default_id(self, kind: Kind) -> str | None:
        specs = self.list(kind)
        for source in ("hub", "local", "starter", "trained"):
            for spec in specs:
                if spec.source == source:
                    return spec.id
        return None

    def resolve(self, model_id: str | None, kind: Kind, preferred: str | None = None) -> ModelSpec:
        """The spec for `model_id` (when None: `preferred` if it is listed, else the kind's default);
        UnknownModel lists the choices."""
        specs = self.list(kind)
        if model_id is None:
            model_id = preferred if any(s.id == preferred for s in specs) else self.default_id(kind)
        for spec in specs:
            if spec.id == model_id:
                return spec
        raise UnknownModel(str(model_id), kind, [s.id for s in specs])

    def location(self, spec: ModelSpec) -> str:
        """Where to load `spec` from; builds a starter model on first use. Offline, a hub model is
        loaded from its cached folder, so no loader asks the hub for it."""
        if spec.source == "starter":
            if shipped.is_trained_starter(spec.id):
                return spec.location  # shipped with the studio: nothing to build
            return str(starter.ensure_starter(spec.id, self.models_root))
        if spec.source == "hub" and self.offline:
            marker = dict(HUB_MODELS.get(spec.kind, [])).get(spec.id, "config.json")
            return hub.cached_folder(spec.id, marker) or spec.location
        return spec.location
