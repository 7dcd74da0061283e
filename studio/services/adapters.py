"""Adapters and trained models as things a person manages: list, rename, delete, export, import,
mix, and merge into the base for deployment.

Rows live in `adapters` (text adapters, trained text models, image LoRAs); their files under
`models/` in the data dir. Imports and mixes are built in a private work folder under `tmp/`,
checked, moved to `models/adapters/<new id>/` in one rename, and only then get a row — a rejected
request leaves nothing behind. User-given names are display names only, never paths.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

from engines.registry import UnknownModel
from engines.text.adapters import (
    ADAPTER_FILES,
    CONFIG_FILE,
    PICKLE_SUFFIXES,
    WEIGHTS_FILE,
    AdapterError,
    MixOptionError,
    adapter_rank,
    check_adapter_folder,
    export_zip,
    merge_adapter,
    mix_adapters,
    pickle_message,
    resolve_mix,
)
from studio.config import StudioConfig
from studio.services import export_notes
from studio.services.adapter_mix import default_name, one_base, perplexity_by_id, read_mix_form
from studio.services.changes import MODELS, Changes
from studio.services.datasets import DatasetService
from studio.services.datasets.uploads import (  # the dataset uploads' zip checks: one place for zip safety
    IncomingFile,
    check_entry,
    check_entry_count,
    copy_entry,
    display_name,
    is_junk,
    mb,
)
from studio.services.errors import Conflict, Invalid, NotFound, TooLarge, UnsupportedType, only_admins
from studio.services.models import MODEL_TYPES, ModelService
from studio.services.scratch import Scratch
from studio.store import Store, new_id
from studio.store import adapters as table
from studio.store import jobs as job_rows

LISTED_TYPES = ("text_adapter", "text_model", "image_lora", "image_model", "speech_model")
MAX_NAME_CHARS = 100
EXPORT_TTL_S = 3600  # export zips older than this are swept on the next export
_ID = re.compile(r"^ad_[0-9a-f]{16}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AdapterService:
    def __init__(self, config: StudioConfig, store: Store, models: ModelService, datasets: DatasetService,
                 changes: Changes | None = None):
        self.config = config
        self.changes = changes or Changes()  # bumped on rename, delete, import and mix
        self.store = store
        self.models = models
        self.datasets = datasets  # a mix is scored on one of its text datasets
        self.data_dir = config.data_dir.resolve()
        self.root = self.data_dir / "models" / "adapters"
        self.scratch = Scratch(self.data_dir, config.shared_data_dir)  # import, mix and export work folders in tmp/

    # -- read ------------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        """Text adapters, trained text models, image LoRAs and trained image models, newest first."""
        return [self._public(r) for r in table.of_types(self.store, *LISTED_TYPES)]

    def get(self, adapter_id: str) -> dict[str, Any]:
        return self._public(self._row(adapter_id))

    # -- rename / delete -------------------------------------------------------------------------
    def rename(self, adapter_id: str, name: str, user: Any = None) -> dict[str, Any]:
        _require_admin(user, "rename adapters")
        self._row(adapter_id)
        name = _check_name(name)
        table.rename(self.store, adapter_id, name)
        self.changes.bump(MODELS)
        return self.get(adapter_id)

    def delete(self, adapter_id: str, user: Any = None) -> None:
        """Row and folder; refused (409) while a queued or running job uses it."""
        _require_admin(user, "delete adapters")
        row = self._row(adapter_id)
        users = job_rows.active_using(self.store, adapter_id)
        if users:
            raise Conflict(
                f"'{row['name']}' is used by job {users[0]}, which is still "
                "queued or running. Cancel the job or wait for it to finish, then delete."
            )
        folder = self._folder(row, must_exist=False)
        table.delete(self.store, adapter_id)
        self.changes.bump(MODELS)
        self._forget_loaded(row)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # -- export ----------------------------------------------------------------------------------
    def export(self, adapter_id: str) -> Path:
        """A zip of the adapter's (or trained model's) folder, in a fresh export folder under tmp/."""
        row = self._row(adapter_id)
        folder = self._folder(row)
        out = self._export_dir() / f"{adapter_id}.zip"
        return export_zip(folder, out, root_name=adapter_id, extra=self._export_files(row))

    def export_note(self, adapter_id: str, *, merged: bool = False, precision: str = "fp32") -> str:
        """What the export of `adapter_id` holds, how it loads and what it leaves out (markdown)."""
        row = self._row(adapter_id)
        merged = merged and row["type"] == "text_adapter"  # a full fine-tune exports as it is
        return export_notes.describe(self._plain(row), merged=merged, precision=precision)

    def _export_files(self, row: sqlite3.Row, merged: bool = False, precision: str | None = None) -> dict[str, str]:
        plain = self._plain(row)
        return {"version.json": export_notes.version_file(plain, merged=merged, precision=precision),
                "EXPORT.md": export_notes.describe(plain, merged=merged, precision=precision or "fp32")}

    @staticmethod
    def _plain(row: sqlite3.Row) -> dict[str, Any]:
        return {**dict(row), "meta": json.loads(row["meta"] or "{}")}

    def merge_export(self, adapter_id: str, user: Any = None, precision: str = "fp32") -> Path:
        """A text adapter folded into its base, as a zip of a full model folder (safetensors + tokenizer),
        with its weights saved in `precision` (fp32 | bf16 | fp16) for deployment."""
        _require_admin(user, "merge adapters")
        if precision not in ("fp32", "bf16", "fp16"):
            raise Invalid("precision must be fp32, bf16 or fp16.")
        row = self._row(adapter_id)
        if row["type"] == "text_model":
            return self.export(adapter_id)  # already a full model
        if row["type"] != "text_adapter":
            raise Invalid(
                "Merging is for text adapters; export image LoRAs as they are.", code="not_mergeable"
            )
        spec, location = self._base(row["base_model"])
        work = self._export_dir()
        merged = work / f"{adapter_id}-merged"
        card = (
            f"---\nbase_model: {spec.id}\nlibrary_name: transformers\ntags: [aigc-studio, merged-lora]\n---\n\n"
            f"# {row['name']} (merged)\n\n`{spec.id}` with the LoRA adapter `{adapter_id}` folded into its "
            "weights by AIGC Studio: a plain model folder that loads with `from_pretrained`, no peft needed.\n"
            f"\nWeights saved in {precision}.\n"
        )
        try:
            merge_adapter(location, self._folder(row), merged, card=card, dtype=precision)
        except (AdapterError, ValueError, RuntimeError) as exc:
            shutil.rmtree(work, ignore_errors=True)
            raise Invalid(
                f"'{row['name']}' could not be merged into '{spec.id}': {exc}", code="merge_failed"
            ) from exc
        zip_path = export_zip(merged, work / f"{adapter_id}-merged.zip", root_name=f"{adapter_id}-merged",
                              extra=self._export_files(row, merged=True, precision=precision))
        shutil.rmtree(merged, ignore_errors=True)
        return zip_path

    # -- import ----------------------------------------------------------------------------------
    def import_adapter(
        self, files: list[IncomingFile], base_model: str | None, name: str, user: Any = None
    ) -> dict[str, Any]:
        """A PEFT LoRA adapter (one .zip, or the folder's files) checked against `base_model` → a new row."""
        # 1. The form: a name, a known base model, some files.
        _require_admin(user, "import adapters")
        name = _check_name(name)
        spec, location = self._base(base_model)
        if not files:
            raise Invalid("Attach the adapter: a .zip of its folder, or adapter_config.json and "
                          f"{WEIGHTS_FILE}.", code="missing_file")  # fmt: skip
        limits = self.config.uploads
        total = sum(Path(f.path).stat().st_size for f in files)
        if total > limits.max_total_bytes:
            raise TooLarge(f"The upload is {mb(total)}; the limit is {mb(limits.max_total_bytes)}.",
                           code="upload_too_large")  # fmt: skip

        # 2. The adapter's files into a private work folder, then the checks.
        work = self.scratch.folder("upload")
        staged = work / "adapter"
        try:
            staged.mkdir()
            notes = self._stage(files, staged)
            try:
                info = check_adapter_folder(staged, spec.id, location)
            except AdapterError as exc:
                raise Invalid(str(exc), code="adapter_mismatch") from exc

            # 3. Into place in one rename, then the row.
            meta = {"source": "import", "files": [display_name(f.name) for f in files][:20],
                    "adapter": info.to_dict(), "warnings": notes + info.warnings}  # fmt: skip
            return self._register(staged, name, spec.id, meta)
        finally:
            self.scratch.remove(work)

    def _stage(self, files: list[IncomingFile], staged: Path) -> list[str]:
        """Copy the adapter files (from a zip or loose) into `staged`; notes on what was left out."""
        if len(files) == 1 and _is_zip(Path(files[0].path)):
            return self._stage_zip(Path(files[0].path), display_name(files[0].name), staged)
        found: dict[str, Path] = {}
        ignored, pickled = [], []
        for f in files:
            base = display_name(f.name)
            if base.lower().endswith(".zip"):
                raise Invalid("Upload one .zip of the adapter folder, or the folder's files — not both.",
                              code="invalid_field")  # fmt: skip
            if base in ADAPTER_FILES:
                found[base] = Path(f.path)
            elif base.lower().endswith(PICKLE_SUFFIXES):
                pickled.append(base)
            else:
                ignored.append(base)
        if WEIGHTS_FILE not in found and pickled:
            raise UnsupportedType(pickle_message(pickled[0]))
        for base, path in found.items():
            shutil.copyfile(path, staged / base)
        return _left_out(ignored + pickled)

    def _stage_zip(self, path: Path, label: str, staged: Path) -> list[str]:
        limits = self.config.uploads
        check_entry_count(path, label, limits)
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise Invalid(f"{label} is not a readable zip archive ({exc}).", code="bad_archive") from exc
        with zf:
            entries = [i for i in zf.infolist() if not is_junk(check_entry(i, label)) and not i.is_dir()]
            if len(entries) > limits.max_files:
                raise TooLarge(f"{label} has {len(entries):,} files; the limit is {limits.max_files:,}.",
                               code="too_many_files")  # fmt: skip
            configs = [i for i in entries if posixpath.basename(i.filename) == CONFIG_FILE]
            if len(configs) > 1:
                raise Invalid(f"{label} holds {len(configs)} adapters; zip one adapter folder at a time.",
                              code="invalid_field")  # fmt: skip
            prefix = posixpath.dirname(configs[0].filename) if configs else None
            wanted, pickled, ignored = [], [], []
            for info in entries:
                base = posixpath.basename(info.filename)
                if (
                    prefix is not None
                    and posixpath.dirname(info.filename) == prefix
                    and base in ADAPTER_FILES
                ):
                    wanted.append(info)
                elif base.lower().endswith(PICKLE_SUFFIXES):
                    pickled.append(info.filename)
                else:
                    ignored.append(info.filename)
            if not any(posixpath.basename(i.filename) == WEIGHTS_FILE for i in wanted) and pickled:
                raise UnsupportedType(pickle_message(posixpath.basename(pickled[0])))
            if not configs:
                raise Invalid(f"{label} has no {CONFIG_FILE}. Zip the folder that peft's save_pretrained wrote.",
                              code="invalid_field")  # fmt: skip
            declared = sum(i.file_size for i in wanted)
            if declared > limits.max_total_bytes:
                raise TooLarge(f"{label} unpacks to {mb(declared)}; the limit is {mb(limits.max_total_bytes)}.",
                               code="archive_too_large")  # fmt: skip
            for info in wanted:
                ratio = info.file_size / max(info.compress_size, 1)
                if info.file_size > 4096 and ratio > limits.max_compression_ratio:
                    raise TooLarge(f"{label}/{info.filename} expands {ratio:,.0f}× (a zip-bomb guard).",
                                   code="compression_ratio_too_high")  # fmt: skip
                if info.flag_bits & 0x1:
                    raise Invalid(f"{label} is password-protected.", code="bad_archive")
                copy_entry(zf, info, staged / posixpath.basename(info.filename), f"{label}/{info.filename}")
        return _left_out(ignored + pickled)

    # -- mix -------------------------------------------------------------------------------------
    def mix(
        self, sources: list[Any], name: str | None = None, user: Any = None, *, weights: list[Any] | None = None,
        combination_type: str = "auto", density: float | None = None, majority_sign_method: str | None = None,
        eval_dataset_id: str | None = None,
    ) -> dict[str, Any]:
        """A new text adapter: ≥ 2 text adapters of one base combined with one of peft's combination types
        (see studio/services/adapter_mix.py); with `eval_dataset_id`, its held-out perplexity beside its
        parents' is in `perplexity` and in the row's meta."""
        # 1. Check the request before any work.
        _require_admin(user, "mix adapters")
        form = read_mix_form(sources, weights, combination_type=combination_type, density=density,
                             majority_sign_method=majority_sign_method, eval_dataset_id=eval_dataset_id)  # fmt: skip
        rows = [self._row(i) for i in form.ids]
        name = _check_name(name or default_name([r["name"] for r in rows], form))
        spec, location = self._base(one_base(rows))
        folders = [self._folder(r) for r in rows]
        try:
            options = resolve_mix(form.options, [adapter_rank(f) for f in folders], form.weights)
        except MixOptionError as exc:
            raise Invalid(str(exc), code=exc.code) from exc
        dataset = self._eval_dataset(form.eval_dataset_id) if form.eval_dataset_id else None
        weights = form.weights

        # 2. Mix in a work folder, then into place and a row.
        work = self.scratch.folder("upload")
        try:
            try:
                mixed = mix_adapters(location, list(zip(folders, weights, strict=True)), work / "adapter",
                                     base_id=spec.id, options=options, eval_dataset=dataset)  # fmt: skip
            except AdapterError as exc:
                raise Invalid(str(exc), code="cannot_mix") from exc
            if "perplexity" in mixed:
                mixed["perplexity"] = perplexity_by_id(mixed["perplexity"], rows, form.eval_dataset_id)
            meta = {"source": "mix", **mixed,
                    "sources": [{"id": r["id"], "name": r["name"], "weight": w} for r, w in zip(rows, weights, strict=True)]}  # fmt: skip
            return {**self._register(work / "adapter", name, spec.id, meta), "perplexity": mixed.get("perplexity")}
        finally:
            self.scratch.remove(work)

    # -- helpers ---------------------------------------------------------------------------------
    def _register(self, staged: Path, name: str, base_id: str, meta: dict[str, Any]) -> dict[str, Any]:
        adapter_id = new_id("ad_")
        final = self.root / adapter_id
        self.root.mkdir(parents=True, exist_ok=True)
        staged.replace(final)
        try:
            table.insert(self.store, id=adapter_id, name=name, type="text_adapter", base_model=base_id, job_id=None,
                         path=final.relative_to(self.data_dir).as_posix(), meta=meta)  # fmt: skip
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        self.changes.bump(MODELS)
        return self.get(adapter_id)

    def _row(self, adapter_id: str) -> sqlite3.Row:
        row = None
        if isinstance(adapter_id, str) and _ID.match(adapter_id):
            row = table.get(self.store, adapter_id, *LISTED_TYPES)
        if row is None:
            raise NotFound(f"No adapter or trained model '{str(adapter_id)[:80]}'. GET /adapters lists them.")
        return row

    def _folder(self, row: sqlite3.Row, must_exist: bool = True) -> Path | None:
        """The row's folder, only if it lies under models/ in the data dir."""
        folder = (self.data_dir / row["path"]).resolve()
        if not folder.is_relative_to(self.data_dir / "models") or folder == self.data_dir / "models":
            if must_exist:
                raise NotFound(f"The files of '{row['name']}' are not in the models folder.")
            return None
        if must_exist and not folder.is_dir():
            raise NotFound(
                f"The files of '{row['name']}' are gone ({row['path']}). Delete it and train or import it again."
            )
        return folder

    def _base(self, base_model: str | None) -> tuple[Any, str]:
        """(spec, folder or hub id) of a text model to use as a base."""
        try:
            spec = self.models.resolve(base_model or None, "text")
        except UnknownModel as exc:
            raise Invalid(str(exc), code="unknown_model") from exc
        return spec, self.models.registry.location(spec)

    def _eval_dataset(self, dataset_id: str) -> Path:
        """The folder of a text dataset to score a mix on (404 unknown, 422 not text)."""
        summary = self.datasets.get(dataset_id)
        if summary["kind"] != "text":
            raise Invalid(f"'{summary['name']}' is an {summary['kind']} dataset; perplexity is measured on a "
                          "text dataset.", code="invalid_field")  # fmt: skip
        return self.datasets.path(dataset_id)

    def _export_dir(self) -> Path:
        self.scratch.expire("export", EXPORT_TTL_S)  # downloads nobody fetched (the UI's, mostly)
        return self.scratch.folder("export")

    def _forget_loaded(self, row: sqlite3.Row) -> None:
        """Unload what a deleted row left in memory: its model, or the base that has it attached."""
        memory = self.models.__dict__.get("memory")
        if row["type"] in ("text_model", "image_model", "speech_model"):
            self.models.registry.unregister(row["id"])
            if memory is not None:
                memory.evict(f"{MODEL_TYPES[row['type']]}:{row['id']}")
            return
        kind, attached = {"text_adapter": ("text", "adapters"), "image_lora": ("image", "loras")}[row["type"]]
        key = f"{kind}:{row['base_model']}"
        if memory is None or not memory.is_loaded(key):
            return
        try:
            engine = memory.get(key, _not_loaded)
        except LookupError:  # unloaded in between
            return
        if row["id"] in getattr(engine, attached, {}):
            memory.evict(key)  # the base reloads once, next time; never a half-detached model

    def _public(self, row: sqlite3.Row) -> dict[str, Any]:
        meta = json.loads(row["meta"] or "{}")
        source = {"import": "imported", "mix": "mixed"}.get(
            meta.get("source"), "trained" if row["job_id"] else "imported"
        )
        return {
            "id": row["id"],
            "name": row["name"],
            "type": row["type"],
            "base_model": row["base_model"],
            "job_id": row["job_id"],
            "source": source,
            "created_at": row["created_at"],
            "size_bytes": _size(self.data_dir / row["path"]),
            "meta": meta,
        }


# -- module helpers ------------------------------------------------------------------------------
def _require_admin(user: Any, what: str) -> None:
    if user is not None and not getattr(user, "is_admin", False):
        raise only_admins(user, what)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _CONTROL.sub("", name).strip():
        raise Invalid("Give it a name (1 to 100 characters).", code="invalid_field")
    name = _CONTROL.sub("", name).strip()
    if len(name) > MAX_NAME_CHARS:
        raise Invalid(
            f"The name is {len(name)} characters; the limit is {MAX_NAME_CHARS}.", code="invalid_field"
        )
    return name


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def _left_out(names: list[str]) -> list[str]:
    if not names:
        return []
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return [f"Not part of the adapter, left out: {shown}."]


def _size(path: Path) -> int:
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    except OSError:
        return 0


def _not_loaded() -> Any:
    raise LookupError("not loaded")
