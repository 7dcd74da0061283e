"""`events.jsonl`: one JSON line per logged step, appended by the trainer (EventLog) and read by
whoever shows progress — all at once (`read_events`) or as it grows (`EventTail`). Both readers
parse through `parse_events`, so a half-written line or a line without a whole-number step
counts the same everywhere."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engines.training.run_dir import RunDir


def parse_events(text: str) -> list[dict[str, Any]]:
    """The events in `text`, in order; lines that are not a JSON object with an int `step` are skipped."""
    out = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and isinstance(event.get("step"), int):
            out.append(event)
    return out


def read_events(path: Path, since_step: int = 0) -> list[dict[str, Any]]:
    """Events with step > since_step; a half-written last line (trainer still writing) is skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [e for e in parse_events(text) if e["step"] > since_step]


class EventTail:
    """Follows a trainer's events.jsonl: each `read_new()` returns the complete lines added since the
    last call. A log that was replaced (a resumed trainer rewrites it) or cut short is read anew.

    `skip_existing`: start at the current end of the file — a resumed job's old log is skipped until
    its trainer rewrites it (EventLog with `resume_step`)."""

    def __init__(self, path: Path, *, skip_existing: bool = False) -> None:
        self.path = Path(path)
        self._inode: int | None = None
        self._offset = 0
        if skip_existing:
            try:
                st = self.path.stat()
                self._inode, self._offset = st.st_ino, st.st_size
            except FileNotFoundError:
                pass

    def read_new(self) -> list[dict[str, Any]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._inode, self._offset = st.st_ino, 0
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for next time
        self._offset += len(complete)
        return parse_events(complete.decode("utf-8", errors="replace"))


class EventLog:
    """Appends one JSON line per logged step and mirrors numbers to TensorBoard.

    On resume pass `resume_step` (the checkpoint's step): events logged after that checkpoint by
    the interrupted run are dropped, so the log reads as one run with no repeated step.
    A trainer may log `total_steps` once it knows it (epoch-based runs); the studio picks it up.
    """

    SYNC_EVERY_S = 1.0  # how often the log is fsync'ed while training

    def __init__(self, run_dir: RunDir, *, resume_step: int | None = None, tensorboard: bool = True):
        self.path = run_dir.events_path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [json.dumps(e) + "\n" for e in read_events(self.path) if e["step"] <= resume_step]
            tmp = self.path.with_name(".events.jsonl.tmp")
            tmp.write_text("".join(kept), encoding="utf-8")
            os.replace(tmp, self.path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._synced_at = time.monotonic()
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1  # hide the orphaned steps
            self._writer = SummaryWriter(log_dir=str(run_dir.tensorboard_dir), purge_step=purge)

    def append(self, step: int, **fields: Any) -> dict[str, Any]:
        event = {"step": int(step), "time": round(time.time(), 3), **fields}
        self._file.write(json.dumps(event, default=_jsonable) + "\n")
        self._file.flush()  # visible to the studio at once; on disk within SYNC_EVERY_S
        if self._writer is not None:
            for key, value in fields.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._writer.add_scalar(f"train/{key}", value, step)
        now = time.monotonic()
        if now - self._synced_at >= self.SYNC_EVERY_S:
            self.sync()
            self._synced_at = now
        return event

    def sync(self) -> None:
        """fsync the log and flush TensorBoard: done at most once a second while training (a sync
        per step cost more than a small model's step) and at close. A killed process loses nothing it
        wrote: the lines are in the OS page cache; only a power cut can cost the last second."""
        os.fsync(self._file.fileno())
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # 0-d tensors and numpy scalars
        return value.item()
    return str(value)
