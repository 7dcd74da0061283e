"""Which models exist, which are loaded, and whether the hub can be reached."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any

from engines import hub
from engines.registry import HUB_MODELS, KINDS, ModelRegistry, ModelSpec, UnknownModel
from studio import __version__
from studio.config import StudioConfig
from studio.services.errors import Invalid, NotFound
from studio.services.version_names import version_title
from studio.services.versions import parse_version, version_label
from studio.store import Store
from studio.store import adapters as adapter_rows

log = logging.getLogger("studio.models")

ADAPTER_TYPES_LISTED = {"text_adapter": "text_adapters", "image_lora": "image_loras", "reward_model": "reward_models"}
MODEL_TYPES = {"text_model": "text", "image_model": "image", "gan": "gan", "speech_model": "speech"}


class ModelService:
    def __init__(self, config: StudioConfig, store: Store):
        self.config = config
        self.store = store
        self.registry = ModelRegistry(config.data_dir / "models", offline=config.offline)
        self.registry.remote = [ModelSpec(f"remote/{name}", "text", "remote", url, meta={"served_as": model})
                                for name, (url, model) in sorted(config.remote_text.items())]
        self._probe_done = threading.Event()
        self._probe_thread: threading.Thread | None = None
        self._hub_reachable: bool | None = None
        if config.offline:
            self._hub_reachable = False
            self._probe_done.set()

    # -- hub reachability ------------------------------------------------------------------------
    def start_hub_probe(self) -> None:
        """Probe the hub in the background; the first request that needs the answer waits for it."""
        if self._probe_done.is_set() or self._probe_thread is not None:
            return
        self._probe_thread = threading.Thread(target=self._probe, name="hub-probe", daemon=True)
        self._probe_thread.start()

    def _probe(self) -> None:
        reachable = hub.probe_hub(self.config.hub_probe_timeout_s)
        self._hub_reachable = reachable
        if not reachable:
            log.warning("The model hub is unreachable: using cached, local and starter models.")
            self.registry.offline = True  # what reaches the loaders: cached folders, never hub ids
        self._probe_done.set()

    def wait_for_probe(self) -> None:
        if not self._probe_done.is_set():
            self.start_hub_probe()
            self._probe_done.wait(self.config.hub_probe_timeout_s + 2)
            if not self._probe_done.is_set():  # belt and braces: never hang a request on the hub
                self._hub_reachable = False
                self.registry.offline = True
                self._probe_done.set()

    @property
    def offline(self) -> bool:
        self.wait_for_probe()
        return self.registry.offline

    def offline_banner(self) -> str | None:
        """What the UI says when running without the hub, or None when online: one line on what the
        defaults are (trained starters write real things; random-weight ones don't), the hub models
        that are missing folded away."""
        if not self.offline:
            return None
        why = "--offline was given" if self.config.offline else "the model hub cannot be reached"
        defaults = []
        for kind in KINDS:
            spec = next((s for s in self.registry.list(kind) if s.id == self.registry.default_id(kind)), None)
            if spec is not None:
                how = ("random weights, noise until trained" if spec.is_random_starter
                       else (spec.meta.get("card") or {}).get("how") or "trained starter"
                       if spec.source == "starter" else spec.source)
                defaults.append(f"{kind} `{spec.id}` ({how})")
        text = f"Offline ({why}): every model runs from this machine. Defaults: " + ", ".join(defaults) + "."
        missing = [repo for kind in KINDS for repo, marker in HUB_MODELS[kind] if not hub.is_cached(repo, marker)]
        if missing:
            text += (f" <details><summary>{len(missing)} hub models are not available offline</summary>"
                     + ", ".join(missing) + "</details>")
        return text

    # -- devices and memory ----------------------------------------------------------------------
    @cached_property
    def device(self) -> str:
        from engines.device import resolve_device

        return resolve_device(self.config.device)

    @cached_property
    def memory(self):
        from engines.device import default_budget_bytes
        from engines.memory import MemoryManager

        budget = self.config.memory_budget_gb
        return MemoryManager(int(budget * 1024**3) if budget else default_budget_bytes(self.device))

    def health(self) -> dict:
        return {"status": "ok", "version": __version__, "device": self.device, "offline": self.offline,
                "precision": self.precision()}

    def precision(self) -> dict:
        """The precision settings and what `auto` means here: {"text": "auto", …, "reduced": "bfloat16"|None}.
        `reduced` is the dtype `auto` runs models of ≥ 20M weights in on this device (None: fp32)."""
        from engines.precision import dtype_name, reduced_dtype

        reduced = reduced_dtype(self.device)
        return {**self.config.precision, "reduced": dtype_name(reduced) if reduced is not None else None}

    def precision_of(self, kind: str) -> str:
        """The precision setting of one engine kind (text | image | speech): auto | fp32 | bf16 | fp16.
        Admins change it through `Studio.settings`."""
        return self.config.precision.get(kind, "auto")

    def loaded_in(self, kind: str, key: str, load: Callable[[], Any], **kwargs) -> Any:
        """The memory manager's engine under `key`, in the kind's current precision: an engine loaded
        before the setting changed is evicted and loaded again (its `precision` is what it was asked)."""
        engine = self.memory.get(key, load, **kwargs)
        if getattr(engine, "precision", None) != self.precision_of(kind):
            self.memory.evict(key)
            engine = self.memory.get(key, load, **kwargs)
        return engine

    # -- listing ---------------------------------------------------------------------------------
    def sync_trained(self) -> None:
        """Register trained full models and GANs from the store with the registry."""
        for row in adapter_rows.of_types(self.store, *MODEL_TYPES, oldest_first=True):  # the listing's order
            self.registry.register(
                ModelSpec(
                    id=row["id"],
                    kind=MODEL_TYPES[row["type"]],  # type: ignore[arg-type]
                    source="trained",
                    location=str(self.config.data_dir / row["path"]),
                    base_model=row["base_model"],
                    meta={"name": row["name"], "job_id": row["job_id"], **_trained_size(row)},
                )
            )

    def resolve(self, model_id: str | None, kind: str) -> ModelSpec:
        self.wait_for_probe()
        self.sync_trained()
        return self.registry.resolve(model_id, kind, self.default_version(kind)[0])  # type: ignore[arg-type]

    def resolve_version(self, kind: str, model: str | None, variant: str | None,
                        variant_row: Callable[[str], Any], noun: str) -> tuple[ModelSpec, Any]:
        """(spec, variant row or None) of a model + adapter/LoRA version. Nothing pinned: the kind's
        default version (which may carry a variant); a variant alone: its own base model."""
        if model is None and variant is None:
            model, variant = self.default_version(kind)
        row = variant_row(variant) if variant else None
        if model is None and row is not None:
            model = row["base_model"]
        try:
            spec = self.resolve(model, kind)
        except UnknownModel as exc:
            raise NotFound(str(exc), code="unknown_model") from exc
        if row is not None and row["base_model"] != spec.id:
            raise Invalid(f"{noun} '{variant}' was trained on '{row['base_model']}', not '{spec.id}'. "
                          f"Pick '{row['base_model']}' as the model or leave the model empty.")
        return spec, row

    def default_version(self, kind: str) -> tuple[str | None, str | None]:
        """(model, adapter) an admin or a finished experiment made the kind's default; (None, None) when
        none was, and no adapter when that adapter has been deleted since."""
        model, adapter = parse_version(self.config.default_models.get(kind, ""))
        if adapter and not adapter_rows.exists(self.store, adapter):
            adapter = None
        return model or None, adapter

    def version_titles(self) -> dict[str, str]:
        """Trained, imported and mixed version id → `name · kind · steps · date`, for every picker."""
        return {row["id"]: version_title(row) for row in adapter_rows.all_versions(self.store)}

    def newest_trained(self, kind: str) -> tuple[str, str] | None:
        """(version, its base) of the newest trained version of `kind` ("text": a full fine-tune or an
        adapter; "image": a LoRA), as version labels; None when nothing was trained yet."""
        types = {"text": {"text_model": False, "text_adapter": True}, "image": {"image_lora": True}}.get(kind, {})
        for row in adapter_rows.all_versions(self.store):  # newest first
            if row["type"] in types:
                on_base = types[row["type"]]
                version = version_label(row["base_model"], row["id"]) if on_base else row["id"]
                return version, row["base_model"]
        return None

    def list_models(self) -> dict:
        self.wait_for_probe()
        self.sync_trained()
        memory = self.__dict__.get("memory")
        out: dict[str, list] = {}
        for kind in KINDS:
            out[kind] = []
            specs = self.registry.list(kind)
            preferred = self.default_version(kind)[0]
            default = preferred if any(s.id == preferred for s in specs) else self.registry.default_id(kind)
            for s in specs:
                engine = memory.peek(f"{kind}:{s.id}") if memory else None
                out[kind].append({
                    "id": s.id,
                    "source": s.source,
                    "loaded": engine is not None,
                    "dtype": _running_dtype(engine),  # what a loaded model runs in, e.g. "bfloat16"
                    "default": s.id == default,
                    **({"card": s.meta["card"]} if s.meta.get("card") else {}),  # a trained starter's
                })
        default_adapters = {self.default_version(k)[1] for k in ("text", "image")} - {None}
        for adapter_type, key in ADAPTER_TYPES_LISTED.items():
            out[key] = [
                {
                    "id": r["id"],
                    "name": r["name"],
                    "base_model": r["base_model"],
                    "job_id": r["job_id"],
                    "created_at": r["created_at"],
                    "meta": json.loads(r["meta"] or "{}"),
                    "default": r["id"] in default_adapters,  # part of the kind's default version
                }
                for r in adapter_rows.of_types(self.store, adapter_type)
            ]
        return out


def _trained_size(row: Any) -> dict:
    """{"resolution": px} of a trained image model (the size it was trained at), else {}."""
    try:
        resolution = json.loads(row["meta"] or "{}").get("params", {}).get("resolution")
    except (ValueError, AttributeError):
        return {}
    return {"resolution": resolution} if row["type"] == "image_model" and isinstance(resolution, int) else {}


def _running_dtype(engine: Any) -> str | None:
    """What a loaded text, image or speech engine runs in ("float32", "bfloat16" …); None otherwise."""
    dtype = getattr(engine, "dtype", None) if engine is not None else None
    return str(dtype) if isinstance(dtype, str) else None
