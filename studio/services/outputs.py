"""Every generation is an output row, stored before it is shown, so it can be rated, found again,
reproduced and exported. Files live under outputs/<date>/ in the data dir."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from studio.services.errors import NotFound
from studio.store import Store, new_id
from studio.store import comparisons as comparison_rows
from studio.store import outputs as output_rows

OUTPUT_ID = re.compile(r"^out_[0-9a-f]{16}$")
MEDIA_TYPES = {".png": "image/png", ".wav": "audio/wav", ".flac": "audio/flac", ".gif": "image/gif"}


class OutputService:
    def __init__(self, data_dir: Path, store: Store):
        self.data_dir = data_dir
        self.store = store

    def new_file_path(self, suffix: str) -> tuple[str, Path]:
        """(output id, absolute path) for a new artifact under outputs/<date>/."""
        output_id = new_id("out_")
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        folder = self.data_dir / "outputs" / day
        folder.mkdir(parents=True, exist_ok=True)
        return output_id, folder / f"{output_id}{suffix}"

    def record(self, *, kind: str, prompt: str, params: dict, model: str, adapter: str | None, seed: int | None,
               user: str, text: str | None = None, file: Path | None = None, output_id: str | None = None) -> dict:
        output_id = output_id or new_id("out_")
        rel = str(file.relative_to(self.data_dir)) if file is not None else None
        output_rows.insert(self.store, output_id, kind=kind, prompt=prompt, params=params, model=model,
                           adapter=adapter, seed=seed, text=text, file=rel, user=user)
        return self.get(output_id, user=user)

    def require(self, output_id: str) -> None:
        """NotFound (404) unless the output exists."""
        self._row(output_id)

    def _row(self, output_id: str):
        if not OUTPUT_ID.match(output_id or ""):
            raise NotFound(f"No output with id '{output_id}'.")
        row = output_rows.get(self.store, output_id)
        if row is None:
            raise NotFound(f"No output with id '{output_id}'.")
        return row

    def get(self, output_id: str, *, user: str | None = None) -> dict:
        row = self._row(output_id)
        rating = output_rows.rating_of(self.store, output_id, user) if user is not None else None
        out = {
            "id": row["id"],
            "kind": row["kind"],
            "prompt": row["prompt"],
            "params": json.loads(row["params"]),
            "model": row["model"],
            "adapter": row["adapter"],
            "seed": row["seed"],
            "created_at": row["created_at"],
            "rating": rating,
        }
        if self._blind(out["params"]):  # an arena output names its version only after the vote
            out.update(model=None, adapter=None, blind=True)
            out["params"].pop("voice", None)  # a speech version is a model and a voice
        if row["text"] is not None:
            out["text"] = row["text"]
        if row["file"]:
            out["url"] = f"/api/v1/outputs/{row['id']}/file"
        return out

    def _blind(self, params: dict) -> bool:
        comparison_id = params.get("arena") if isinstance(params, dict) else None
        if not comparison_id:
            return False
        row = comparison_rows.get(self.store, comparison_id)
        return row is None or row["winner"] is None  # no row yet: the comparison is being made

    def file(self, output_id: str) -> tuple[Path | None, str | None, str]:
        """(path, text, media type) of an output's artifact."""
        row = self._row(output_id)
        if row["file"]:
            path = (self.data_dir / row["file"]).resolve()
            if not path.is_relative_to(self.data_dir / "outputs") or not path.exists():
                raise NotFound(f"The file of output '{output_id}' is gone.")
            return path, None, MEDIA_TYPES.get(path.suffix, "application/octet-stream")
        return None, row["text"] or "", "text/plain; charset=utf-8"

    def recent(self, kind: str | None = None, limit: int = 50, user: str | None = None, owner: str | None = None,
               search: str | None = None) -> list[dict]:
        """Newest outputs (`owner`'s only, when given; prompts containing `search`), with `user`'s rating."""
        return [self.get(output_id, user=user)
                for output_id in output_rows.newest_ids(self.store, kind=kind, limit=limit, owner=owner,
                                                        search=search)]
