"""What a studio killed mid-way leaves behind is gone after the next start: every scratch folder
in tmp/, and folders or files that a kill stopped from being registered (no row points to them)."""

from __future__ import annotations

import json
import os
import time

import pytest

from studio.config import StudioConfig
from studio.services import Studio
from studio.store import utcnow

JOB_A, JOB_B, JOB_C = "job_00000000000000aa", "job_00000000000000bb", "job_00000000000000cc"


def config(tmp_path) -> StudioConfig:
    return StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu", max_concurrent_jobs=0)


@pytest.fixture
def studio(tmp_path):
    studio = Studio(config(tmp_path))
    yield studio
    studio.close()


def folder_with_file(path, name="weights.safetensors"):
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_bytes(b"x" * 16)
    return path


def add_job(studio, job_id, status="completed"):
    with studio.store.transaction() as c:
        c.execute(
            "INSERT INTO jobs (id, kind, status, created_at, updated_at) VALUES (?, 'gan', ?, ?, ?)",
            (job_id, status, utcnow(), utcnow()),
        )


def add_adapter(studio, adapter_id, path, type_="gan", job_id=None):
    with studio.store.transaction() as c:
        c.execute(
            "INSERT INTO adapters (id, name, type, base_model, job_id, path, meta, created_at)"
            " VALUES (?, 'x', ?, 'dcgan-32', ?, ?, '{}', ?)",
            (adapter_id, type_, job_id, path, utcnow()),
        )


def test_a_new_studio_sweeps_every_scratch_leftover_not_only_dataset_uploads(tmp_path):
    tmp = tmp_path / "data" / "tmp"
    for name in ("api-upload-0123456789abcdef", "upload-0123", "export-4567", "job-89ab", "gradio/c0ffee"):
        folder_with_file(tmp / name, "00000.part")
    (tmp / "feedback-kto.jsonl").write_text('{"prompt": "secret"}\n')
    studio = Studio(config(tmp_path))  # the restart, before anything is served
    try:
        assert list(tmp.iterdir()) == []
        studio.start()
        assert list(tmp.iterdir()) == []
    finally:
        studio.close()


def test_start_removes_trained_artifacts_and_imports_no_row_points_to(studio):
    models = studio.data_dir / "models"
    add_job(studio, JOB_A)
    kept_trained = folder_with_file(models / "trained" / JOB_A)
    add_adapter(studio, "ad_00000000000000a1", f"models/trained/{JOB_A}", job_id=JOB_A)
    kept_import = folder_with_file(models / "adapters" / "ad_00000000000000a2")
    add_adapter(studio, "ad_00000000000000a2", "models/adapters/ad_00000000000000a2", type_="text_adapter")
    # a kill between the move into models/ and the INSERT
    orphan_trained = folder_with_file(models / "trained" / JOB_B)
    orphan_half_saved = folder_with_file(models / "trained" / f".tmp-{JOB_B}-4242")
    orphan_import = folder_with_file(models / "adapters" / "ad_00000000000000b2")
    # never touched: models the user or the studio put there on purpose
    starter = folder_with_file(models / "starter" / "gpt2-tiny", "config.json")
    local = folder_with_file(models / "local" / "text" / "mine", "config.json")
    loose_checkpoint = models / "my-model.safetensors"
    loose_checkpoint.write_bytes(b"x")

    studio.start()

    assert kept_trained.is_dir() and kept_import.is_dir()
    assert not orphan_trained.exists() and not orphan_half_saved.exists() and not orphan_import.exists()
    assert starter.is_dir() and local.is_dir() and loose_checkpoint.is_file()


def test_start_keeps_the_artifact_folder_of_a_queued_or_running_job(studio):
    add_job(studio, JOB_C, status="queued")
    folder = folder_with_file(studio.data_dir / "models" / "trained" / JOB_C)
    studio.start()
    assert folder.is_dir()


def test_start_removes_run_folders_and_output_files_without_a_row(studio):
    add_job(studio, JOB_A)
    kept_run = folder_with_file(studio.data_dir / "runs" / JOB_A, "config.json")
    orphan_run = folder_with_file(studio.data_dir / "runs" / JOB_B, "config.json")
    day = studio.data_dir / "outputs" / "2024-05-01"
    day.mkdir(parents=True)
    png = studio.outputs.record(kind="image", prompt="p", params={}, model="m", adapter=None, seed=1,
                                user="local", file=day / "out_00000000000000a1.png", output_id="out_00000000000000a1")
    (day / "out_00000000000000a1.png").write_bytes(b"png")
    orphan_png = day / "out_00000000000000b1.png"  # killed between the file and its row
    orphan_png.write_bytes(b"png")
    half_written = day / ".out_00000000000000c1.png.tmp"
    half_written.write_bytes(b"pn")
    not_ours = day / "notes.txt"
    not_ours.write_text("mine")

    studio.start()

    assert kept_run.is_dir() and not orphan_run.exists()
    assert (day / "out_00000000000000a1.png").is_file() and png["id"] == "out_00000000000000a1"
    assert not orphan_png.exists() and not half_written.exists() and not_ours.is_file()


def test_a_job_that_completed_while_the_studio_was_down_is_registered_not_swept(studio):
    """The trainer wrote its artifact and result.json, then the studio died before it saw them:
    at start the job is settled as completed and its artifact kept, not thrown away as an orphan."""
    job = studio.jobs.create("gan", params={"max_steps": 1})
    with studio.store.transaction() as c:
        c.execute("UPDATE jobs SET status = 'running' WHERE id = ?", (job["id"],))
    artifact = folder_with_file(studio.data_dir / "models" / "trained" / job["id"], "generator.safetensors")
    run = studio.jobs.run_dir(job["id"])
    run.mark_started()
    run.write_result({"status": "completed", "metrics": {"fid": 1.5},
                      "artifact": {"type": "gan", "path": str(artifact), "name": "Shapes"}})

    studio.start()

    done = studio.jobs.get(job["id"])
    assert done["status"] == "completed" and done["artifact"]["type"] == "gan", done
    row = studio.store.query_one("SELECT path FROM adapters WHERE id = ?", (done["artifact"]["id"],))
    assert row["path"] == f"models/trained/{job['id']}" and artifact.is_dir()
    assert json.loads(json.dumps(done["metrics"]))["fid"] == 1.5


def test_start_keeps_the_file_of_a_completed_export_job(studio):
    """An export's folder is the deliverable (no `adapters` row): only a failed export's goes."""
    with studio.store.transaction() as c:
        for job_id, status in ((JOB_A, "completed"), (JOB_B, "failed")):
            c.execute("INSERT INTO jobs (id, kind, status, created_at, updated_at) VALUES (?, 'image-export', ?, ?, ?)",
                      (job_id, status, utcnow(), utcnow()))
    kept = folder_with_file(studio.data_dir / "models" / "trained" / JOB_A, "sd-tiny-fp16.safetensors")
    gone = folder_with_file(studio.data_dir / "models" / "trained" / JOB_B, "sd-tiny-fp16.safetensors")
    studio.start()
    assert kept.is_dir() and not gone.exists()


def test_with_replicas_only_files_unregistered_for_a_while_are_removed(tmp_path):
    """Another replica may have moved a dataset into place and not yet written its row."""
    from studio.services.leftovers import remove_orphans
    from studio.store import Store

    store = Store(tmp_path / "studio.db")
    fresh = tmp_path / "datasets" / "ds_00000000000000aa"
    stale = tmp_path / "datasets" / "ds_00000000000000bb"
    for folder in (fresh, stale):
        folder.mkdir(parents=True)
    hour_ago = time.time() - 7200
    os.utime(stale, (hour_ago, hour_ago))
    assert remove_orphans(tmp_path, store, min_age_s=3600) == ["datasets/ds_00000000000000bb"]
    assert fresh.is_dir()
