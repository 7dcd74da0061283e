"""The data dir's tmp/ has one owner: named scratch folders handed out, removed after use, and
every leftover swept when the studio starts."""

from __future__ import annotations

import os
import time

import pytest

from studio.services.scratch import Scratch


def test_folders_are_named_by_purpose_private_and_unique(tmp_path):
    scratch = Scratch(tmp_path)
    a, b = scratch.folder("export"), scratch.folder("export")
    assert a != b and a.is_dir() and b.is_dir()
    assert a.parent == tmp_path / "tmp" and a.name.startswith("export-")
    assert len(a.name) > len("export-") + 8  # a random part nobody can guess


@pytest.mark.parametrize("purpose", ["", "../up", "a/b", "Export", "x" * 80, "tmp\x00"])
def test_a_purpose_is_a_short_slug(tmp_path, purpose):
    with pytest.raises(ValueError):
        Scratch(tmp_path).folder(purpose)
    assert not (tmp_path / "tmp").exists() or list((tmp_path / "tmp").iterdir()) == []


def test_use_removes_the_folder_even_when_the_work_fails(tmp_path):
    scratch = Scratch(tmp_path)
    with scratch.use("api-upload") as folder:
        (folder / "00000.part").write_bytes(b"half an upload")
    assert not folder.exists()
    with pytest.raises(RuntimeError), scratch.use("api-upload") as folder:
        (folder / "x").write_bytes(b"1")
        raise RuntimeError("the upload was refused")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_remove_only_touches_folders_inside_tmp(tmp_path):
    scratch = Scratch(tmp_path)
    outside = tmp_path / "datasets" / "ds_keep"
    outside.mkdir(parents=True)
    scratch.remove(outside)
    assert outside.is_dir()
    inside = scratch.folder("export")
    scratch.remove(inside)
    assert not inside.exists()


def test_expire_sweeps_old_folders_of_one_purpose_only(tmp_path):
    scratch = Scratch(tmp_path)
    old, fresh, other = scratch.folder("export"), scratch.folder("export"), scratch.folder("upload")
    an_hour_ago = time.time() - 3600
    for folder in (old, other):
        os.utime(folder, (an_hour_ago, an_hour_ago))
    scratch.expire("export", max_age_s=600)
    assert not old.exists() and fresh.is_dir() and other.is_dir()


def test_sweep_removes_every_leftover(tmp_path):
    tmp = tmp_path / "tmp"
    for name in ("api-upload-0123abcd", "upload-89ef", "export-aa", "job-bb", "gradio/4f2c/file.png"):
        (tmp / name).mkdir(parents=True)
        (tmp / name / "part").write_bytes(b"x")
    (tmp / "feedback-kto.jsonl").write_text("{}\n")
    (tmp / "tmpk3j9x2").write_bytes(b"a library's temp file")
    os.symlink(tmp_path, tmp / "link-out")  # a link is removed, never followed
    removed = Scratch(tmp_path).sweep()
    assert removed == 8
    assert list(tmp.iterdir()) == [] and tmp_path.is_dir()


def test_replicas_sharing_a_data_dir_sweep_only_what_is_nobodys(tmp_path):
    """Each replica has its own scratch root; a starting one leaves live replicas' work alone."""
    import socket

    host = socket.gethostname()
    tmp = tmp_path / "tmp"
    live_here = tmp / f"replica-{host}-{os.getppid()}"  # a process that runs: another replica here
    dead_here = tmp / f"replica-{host}-{2**22 + 12345}"  # beyond pid_max: no such process
    elsewhere_busy = tmp / "replica-other-host-77"
    elsewhere_dead = tmp / "replica-gone-host-88"
    for folder in (live_here, dead_here, elsewhere_busy, elsewhere_dead):
        (folder / "upload-0123").mkdir(parents=True)
    day_ago = time.time() - 2 * 86_400
    os.utime(elsewhere_dead, (day_ago, day_ago))
    mine = Scratch(tmp_path, shared=True)
    own = mine.folder("export")
    assert own.parent == tmp / f"replica-{host}-{os.getpid()}"
    mine.sweep()
    assert sorted(p.name for p in tmp.iterdir()) == sorted([live_here.name, elsewhere_busy.name])
    assert (live_here / "upload-0123").is_dir()
