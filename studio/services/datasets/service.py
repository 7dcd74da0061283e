"""`DatasetService`: validate an upload, store its normalised copy, and serve it back.

An upload becomes a dataset in four steps, and a rejection at any of them leaves nothing behind:

1. check the form fields (kind, name, options);
2. unpack and check every file in a private scratch folder ``data_dir/tmp/upload-<random>/``;
3. write the normalised copy + ``manifest.json`` there, then ``os.replace`` it to ``datasets/<id>/``;
4. insert the row; if that fails the folder goes again. The work folder is removed in ``finally``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from PIL import Image

from engines.augment import ImageAugmenter, validate_augment
from studio.config import StudioConfig
from studio.services.changes import DATASETS, Changes
from studio.services.datasets.audio import build_audio_dataset
from studio.services.datasets.images import build_image_dataset
from studio.services.datasets.text import filter_and_describe, read_text_members
from studio.services.datasets.uploads import IncomingFile, Unpacked, unpack
from studio.services.errors import Conflict, Invalid, NotFound
from studio.services.scratch import Scratch
from studio.store import Store, new_id, utcnow
from studio.store import datasets as table

KINDS = ("text", "image", "audio")
FORMAT_VERSION = 1
MAX_NAME_CHARS = 100
PREVIEW_ITEMS = {"text": 10, "image": 12, "audio": 50}  # audio: the clip table; the first few are playable
LAYOUT = {"text": "jsonl", "image": "imagefolder", "audio": "audiofolder"}
ITEM_SUFFIX = {"image": ".png", "audio": ".wav"}
_ID = re.compile(r"ds_[0-9a-f]{16}")  # what new_id("ds_") makes; anything else never reaches the disk


class DatasetService:
    def __init__(self, config: StudioConfig, store: Store, changes: Changes | None = None):
        self.config = config
        self.changes = changes or Changes()  # bumped when a dataset is added or deleted
        self.store = store
        self.limits = config.uploads
        self.root = config.data_dir / "datasets"
        self.scratch = Scratch(config.data_dir, config.shared_data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.scratch.root.mkdir(parents=True, exist_ok=True)

    # -- create ---------------------------------------------------------------------------------
    def create(
        self, files: list[IncomingFile], kind: str, name: str, *, dedupe: bool = False, min_chars: int = 0
    ) -> dict:
        # 1. The form fields
        kind = _check_kind(kind)
        name = _check_name(name)
        if isinstance(min_chars, bool) or not isinstance(min_chars, int) or min_chars < 0:
            raise Invalid(f"min_chars must be a whole number ≥ 0, not {min_chars!r}.", code="invalid_field")

        with self.scratch.use("upload") as work:
            # 2. Unpack and check every file; write the normalised copy beside it
            unpacked = unpack(files, work / "in", self.limits)
            staged = work / "out"
            num_items, stats, warnings = self._build(
                kind, unpacked, staged, dedupe=dedupe, min_chars=min_chars
            )
            if unpacked.ignored:
                n, shown = len(unpacked.ignored), ", ".join(unpacked.ignored[:3])
                more = f" and {n - 3:,} more" if n > 3 else ""
                warnings.append(
                    f"Ignored {n:,} file{'' if n == 1 else 's'} of a type datasets do not use: {shown}{more}."
                )

            # 3. The manifest, then the folder moves into place in one step
            summary = {
                "id": new_id("ds_"),
                "name": name,
                "kind": kind,
                "num_items": num_items,
                "stats": stats,
                "warnings": warnings,
                "created_at": utcnow(),
            }
            manifest = {
                "format_version": FORMAT_VERSION,
                **summary,
                "layout": LAYOUT[kind],
                "sources": unpacked.sources,
            }
            (staged / "manifest.json").write_text(
                json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            final = self.root / summary["id"]
            os.replace(staged, final)

            # 4. The row, only once the folder is there
            try:
                table.insert(self.store, **summary)
            except BaseException:
                shutil.rmtree(final, ignore_errors=True)
                raise
            self.changes.bump(DATASETS)
            return summary

    def _build(
        self, kind: str, unpacked: Unpacked, out_dir: Path, *, dedupe: bool, min_chars: int
    ) -> tuple[int, dict, list[str]]:
        if kind == "image":
            return build_image_dataset(unpacked.members, out_dir, self.limits)
        if kind == "audio":
            return build_audio_dataset(unpacked.members, out_dir, self.limits, ignored=unpacked.ignored)
        rows, stats, warnings = filter_and_describe(
            read_text_members(unpacked.members, self.limits), dedupe=dedupe, min_chars=min_chars
        )
        stats["files"] = len(unpacked.members)
        out_dir.mkdir(parents=True)
        with open(out_dir / "data.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return len(rows), stats, warnings

    # -- read -----------------------------------------------------------------------------------
    def list(self) -> list[dict]:
        return table.all_(self.store)

    def get(self, dataset_id: str) -> dict:
        """The summary plus ``preview``: the first rows (text) or items (image, audio)."""
        summary = self._row(dataset_id)
        folder = self.path(dataset_id)
        limit = PREVIEW_ITEMS[summary["kind"]]
        data_file = folder / ("data.jsonl" if summary["kind"] == "text" else "metadata.jsonl")
        preview = []
        with open(data_file, encoding="utf-8") as fh:
            for index, line in enumerate(fh):
                if index >= limit:
                    break
                row = json.loads(line)
                if summary["kind"] == "image":
                    with Image.open(folder / row["file_name"]) as im:  # the header only
                        row["width"], row["height"] = im.size
                if summary["kind"] != "text":
                    row = {"index": index, **row}
                preview.append(row)
        return {**summary, "preview": preview}

    def path(self, dataset_id: str) -> Path:
        """The normalised folder (for trainers): data.jsonl, or an image/audio folder."""
        self._row(dataset_id)
        folder = self.root / dataset_id
        if not folder.is_dir():
            raise NotFound(f"Dataset '{dataset_id}' has lost its files. Delete it and upload the data again.")
        return folder

    def item_path(self, dataset_id: str, index: int) -> Path:
        """The stored image or audio file of item ``index`` (0-based)."""
        summary = self._row(dataset_id)
        if summary["kind"] not in ITEM_SUFFIX:
            raise NotFound(f"Dataset '{dataset_id}' is a text dataset; its rows have no files.")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < summary["num_items"]:
            raise NotFound(
                f"Dataset '{dataset_id}' has no item {index}; its items are numbered "
                f"0–{summary['num_items'] - 1}."
            )
        item = self.path(dataset_id) / f"{index:06d}{ITEM_SUFFIX[summary['kind']]}"
        if not item.is_file():
            raise NotFound(f"Item {index} of dataset '{dataset_id}' is missing on disk.")
        return item

    def preview_augment(
        self, dataset_id: str, augment: list[str], n: int = 8, resolution: int = 64, seed: int = 0
    ) -> list[Image.Image]:
        """What training would see: the first images after the chosen augmentations."""
        summary = self._row(dataset_id)
        if summary["kind"] != "image":
            raise Invalid(
                f"Dataset '{dataset_id}' is a {summary['kind']} dataset; augmentation previews "
                "are for image datasets.",
                code="invalid_field",
            )
        try:
            names = validate_augment(augment)
        except ValueError as exc:
            raise Invalid(str(exc), code="invalid_field") from exc
        if not 1 <= n <= 64:
            raise Invalid(f"n must be between 1 and 64, not {n}.", code="invalid_field")
        if not 8 <= resolution <= 1024:
            raise Invalid(
                f"resolution must be between 8 and 1024 px, not {resolution}.", code="invalid_field"
            )
        augmenter = ImageAugmenter(names, resolution, seed=seed)
        images = []
        for i in range(n):  # with fewer images than n, the same ones again show the randomness
            with Image.open(self.item_path(dataset_id, i % summary["num_items"])) as im:
                images.append(augmenter(im))
        return images

    # -- delete ---------------------------------------------------------------------------------
    def delete(self, dataset_id: str) -> None:
        self._check_id(dataset_id)
        folder = self.root / dataset_id
        with self.scratch.use("delete") as aside:  # the folder goes with it; a kill: swept at start
            trash = aside / dataset_id

            def move_aside() -> None:  # in the row's transaction: a failed move keeps the row
                if folder.exists():
                    os.replace(folder, trash)

            try:
                deleted, busy_job = table.delete_unless_in_use(self.store, dataset_id, before_commit=move_aside)
                if busy_job is not None:
                    raise Conflict(
                        f"Dataset '{dataset_id}' is in use by job {busy_job}. Cancel the job or "
                        "wait for it to finish, then delete the dataset.",
                        code="dataset_in_use",
                    )
                if not deleted:
                    raise _not_found(dataset_id)
            except BaseException:
                if trash.exists() and not folder.exists():
                    os.replace(trash, folder)
                raise
        self.changes.bump(DATASETS)

    # -- helpers --------------------------------------------------------------------------------
    def _check_id(self, dataset_id: str) -> None:
        if not isinstance(dataset_id, str) or not _ID.fullmatch(dataset_id):
            raise _not_found(dataset_id)

    def _row(self, dataset_id: str) -> dict:
        self._check_id(dataset_id)
        row = table.get(self.store, dataset_id)
        if row is None:
            raise _not_found(dataset_id)
        return row


def _not_found(dataset_id: object) -> NotFound:
    shown = str(dataset_id)[:64]
    return NotFound(f"No dataset with id '{shown}'. List datasets to see the ids.", code="dataset_not_found")


def _check_kind(kind: object) -> str:
    if kind not in KINDS:
        shown = str(kind)[:40]
        raise Invalid(f"Unknown dataset kind '{shown}'; choose text, image or audio.", code="invalid_field")
    return str(kind)


def _check_name(name: object) -> str:
    """Names are display data only (never paths): whitespace collapsed, at most 100 characters."""
    text = " ".join(str(name or "").split())
    if not text:
        raise Invalid("Give the dataset a name.", code="invalid_field")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise Invalid("The dataset name contains control characters; use plain text.", code="invalid_field")
    if len(text) > MAX_NAME_CHARS:
        raise Invalid(
            f"The dataset name has {len(text)} characters; the limit is {MAX_NAME_CHARS}.",
            code="invalid_field",
        )
    return text
