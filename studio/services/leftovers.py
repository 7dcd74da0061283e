"""Files a killed studio left with no row pointing to them, found and removed at start.

Everything the studio keeps is written first and registered second (a folder moved into place,
then its row), so a kill between the two leaves a file that nothing refers to and nothing will
ever clean up. At start — after `JobService.recover()` has registered what finished while the
studio was down — these are removed:

    datasets/<id>/                     no `datasets` row
    runs/<job-id>/                     no `jobs` row
    models/trained/*, models/adapters/*  no `adapters` row's path is (or lies in) it, no
                                       queued or running job writes to it, and it is not the
                                       folder of a completed export (a deliverable without a row)
    outputs/<day>/out_….*              no `outputs` row names the file (and `.out_….tmp` halves)

Only these places and only names the studio itself makes are looked at: `models/starter`,
`models/local` and anything a user dropped elsewhere are never touched. With replicas sharing the
data dir, another replica may be between the two steps right now: then only what has been left
unregistered for `min_age_s` goes.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

from studio.store import Store, adapters, datasets, jobs, outputs

log = logging.getLogger("studio.leftovers")

ARTIFACT_DIRS = ("models/trained", "models/adapters")  # where trained, imported and mixed models go
_OUTPUT_FILE = re.compile(r"^(out_[0-9a-f]{16}\.[a-z0-9]+|\.out_[0-9a-f]{16}\.[a-z0-9]+\.tmp)$")
_ACTIVE = ("queued", "running")
DELIVERABLE_KINDS = ("export", "image-export")  # job kinds whose output folder is kept with no `adapters` row


REPLICA_MIN_AGE_S = 3600.0  # with replicas: unregistered this long, a file is nobody's work in progress


def remove_orphans(data_dir: Path, store: Store, min_age_s: float = 0.0) -> list[str]:
    """Remove what no row points to (and was last changed `min_age_s` ago or more); returns the
    removed paths, relative to the data dir."""
    data_dir = Path(data_dir)
    removed: list[str] = []
    cutoff = time.time() - min_age_s

    def drop(path: Path) -> None:
        try:
            if min_age_s and path.lstat().st_mtime > cutoff:
                return  # perhaps another replica's, about to be registered
        except OSError:
            return
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path.relative_to(data_dir).as_posix())

    dataset_ids = datasets.ids(store)
    for folder in _children(data_dir / "datasets"):
        if folder.is_dir() and folder.name not in dataset_ids:
            drop(folder)

    job_statuses = jobs.statuses(store)
    for folder in _children(data_dir / "runs"):
        if folder.is_dir() and folder.name not in job_statuses:
            drop(folder)

    registered = [Path(p).as_posix() for p in adapters.paths(store)]
    active = [job_id for job_id, status in job_statuses.items() if status in _ACTIVE]
    deliverables = jobs.completed_of_kinds(store, DELIVERABLE_KINDS)
    for place in ARTIFACT_DIRS:
        for entry in _children(data_dir / place):
            rel = entry.relative_to(data_dir).as_posix()
            in_use = any(p == rel or p.startswith(rel + "/") for p in registered)
            being_written = any(job_id in entry.name for job_id in active)  # <job-id>, .tmp-<job-id>-<pid>
            if not in_use and not being_written and entry.name not in deliverables:
                drop(entry)

    files = outputs.files(store)
    for day in _children(data_dir / "outputs"):
        for entry in _children(day):
            if _OUTPUT_FILE.match(entry.name) and entry.relative_to(data_dir).as_posix() not in files:
                drop(entry)

    if removed:
        log.info("removed %d unregistered leftover(s): %s", len(removed), ", ".join(removed[:10]))
    return removed


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
