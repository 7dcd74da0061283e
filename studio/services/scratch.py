"""The one owner of the data dir's `tmp/`: it hands out named scratch folders and sweeps them.

Every piece of work that needs room before its result is checked and moved into place (an upload
streaming in, a dataset being unpacked, an adapter import or mix, an export waiting to be
downloaded, a job's run folder before it is queued) asks for `tmp/<purpose>-<random>` here. The
work removes its folder when it ends; whatever a killed studio left behind is swept by
`sweep()` at the next start, before anything is served — so nothing under tmp/ outlives the
process that made it. Gradio's cache (`gradio_cache_dir`: tmp/gradio, where the command line
points Gradio) is swept with the rest.

Replicas sharing one data dir (`shared=True`: a PostgreSQL database) each get their own scratch
root, `tmp/replica-<host>-<pid>/`, and a starting replica sweeps only what is nobody's: its own
root, the roots of replicas on this host whose process has ended, and anything else under tmp/
untouched for `STALE_S` (a replica on another host that died).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("studio.scratch")

_PURPOSE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")  # becomes part of a folder name: a short slug only
STALE_S = 86_400.0  # untouched this long, another host's scratch is a dead replica's
_REPLICA = re.compile(r"^replica-(?P<host>.+)-(?P<pid>\d+)$")


def scratch_root(data_dir: Path, shared: bool = False) -> Path:
    """tmp/, or this process's own folder in it when replicas share the data dir."""
    tmp = Path(data_dir) / "tmp"
    return tmp / f"replica-{socket.gethostname()}-{os.getpid()}" if shared else tmp


def gradio_cache_dir(data_dir: Path, shared: bool = False) -> Path:
    """Where Gradio keeps uploads and the files it serves: under tmp/, so they never outlive the process."""
    return scratch_root(data_dir, shared) / "gradio"


class Scratch:
    def __init__(self, data_dir: Path, shared: bool = False):
        self.tmp = Path(data_dir) / "tmp"
        self.root = scratch_root(data_dir, shared)
        self.shared = shared

    def keep_alive(self, every_s: float = 3600.0) -> None:
        """With replicas: touch this replica's root now and then, so that a replica starting
        elsewhere never takes it for a dead one's (its age is what tells, see `_abandoned`)."""
        if not self.shared:
            return

        def touch() -> None:
            while True:
                try:
                    self.root.mkdir(parents=True, exist_ok=True)
                    os.utime(self.root)
                except OSError:
                    log.warning("could not touch %s", self.root, exc_info=True)
                time.sleep(every_s)

        threading.Thread(target=touch, name="scratch-keep-alive", daemon=True).start()

    def folder(self, purpose: str) -> Path:
        """A new, empty, private folder `tmp/<purpose>-<random>`; the caller removes it."""
        if not isinstance(purpose, str) or not _PURPOSE.match(purpose):
            raise ValueError(f"A scratch purpose is a short lowercase slug, not {purpose!r}.")
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root / f"{purpose}-{secrets.token_hex(8)}"
        folder.mkdir(mode=0o700)
        return folder

    @contextmanager
    def use(self, purpose: str) -> Iterator[Path]:
        """A scratch folder for the length of a `with` block, removed however the block ends."""
        folder = self.folder(purpose)
        try:
            yield folder
        finally:
            self.remove(folder)

    def remove(self, path: Path) -> None:
        """Remove a scratch folder or file; anything outside tmp/ is left alone."""
        path = Path(path)
        if path.parent.resolve() != self.root.resolve():
            log.warning("not removing %s: it is not a scratch folder", path)
            return
        _remove(path)

    def expire(self, purpose: str, max_age_s: float) -> None:
        """Remove this purpose's folders older than `max_age_s` (downloads nobody fetched)."""
        cutoff = time.time() - max_age_s
        for folder in self.root.glob(f"{purpose}-*"):
            try:
                if folder.lstat().st_mtime < cutoff:
                    _remove(folder)
            except OSError:  # removed by someone else meanwhile
                pass

    def sweep(self) -> int:
        """At start, before serving: remove everything in tmp/ (with replicas: what is nobody's).
        Returns how many entries went."""
        if not self.tmp.is_dir():
            return 0
        removed = 0
        for entry in list(self.tmp.iterdir()):
            if not self.shared or entry == self.root or _abandoned(entry):
                _remove(entry)
                removed += 1
        if removed:
            log.info("removed %d leftover(s) from %s", removed, self.tmp)
        return removed


def _abandoned(entry: Path) -> bool:
    """Another replica's scratch root whose process has ended (this host), or anything untouched
    for STALE_S (a replica elsewhere that died, or a leftover from before replicas)."""
    found = _REPLICA.match(entry.name)
    if found and found["host"] == socket.gethostname():
        try:
            os.kill(int(found["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    try:
        return time.time() - entry.lstat().st_mtime > STALE_S
    except OSError:
        return False


def _remove(path: Path) -> None:
    """A folder with its contents, or a file or link (a link is never followed)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
