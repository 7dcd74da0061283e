"""What a finished run leaves behind: the artifact folder, written whole or not at all."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engines.training.run_dir import JobConfig, RunDir


def artifact_dir(job: JobConfig, run_dir: RunDir) -> Path:
    """Where the artifact goes: the job's output_dir (the studio always sets one), else `artifact/`
    in the run folder."""
    return Path(job.output_dir) if job.output_dir else run_dir.path / "artifact"


@contextmanager
def atomic_folder(out_dir: Path) -> Iterator[Path]:
    """A new empty folder to write the artifact into; when the block ends it replaces `out_dir` in one
    rename, so a reader (or a killed run) never leaves half an artifact. On an error it is removed."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)


def dataset_name(dataset_path: Path) -> str:
    """The dataset's display name from its manifest (the studio writes one), else its folder name."""
    try:
        return str(json.loads((Path(dataset_path) / "manifest.json").read_text(encoding="utf-8"))["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return Path(dataset_path).name
