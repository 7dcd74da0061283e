"""JobService with real child processes (the selftest trainer, started as `accelerate launch` would start it).

No HTTP client or browser is attached: the service's own monitor thread runs every job.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

from engines.training import latest_checkpoint
from studio.config import StudioConfig
from studio.services.auth import User
from studio.services.errors import Conflict, Forbidden, Invalid, NotFound
from studio.services.job_processes import final_status as _final_status
from studio.services.job_processes import group_alive as _group_alive
from studio.services.job_processes import redact as _redact
from studio.services.jobs import JobService
from studio.store import Store
from tests.waiting import wait_for

GRACE_S = 5.0
SLOW = {"max_steps": 400, "save_every": 5, "step_delay_s": 0.1}  # ~40 s unless stopped


def make_service(tmp_path, **overrides) -> JobService:
    config = StudioConfig(data_dir=tmp_path, device="cpu", job_grace_s=GRACE_S, **overrides)
    return JobService(config, Store(config.data_dir / "studio.db"))


@pytest.fixture
def jobs(tmp_path):
    service = make_service(tmp_path)
    yield service
    service.shutdown()


def wait_status(jobs: JobService, job_id: str, statuses: tuple[str, ...], timeout: float = 60) -> dict:
    return wait_for(
        lambda: (j := jobs.get(job_id))["status"] in statuses and j, timeout, f"{job_id} to be {statuses}"
    )


def wait_step(jobs: JobService, job_id: str, step: int, timeout: float = 60) -> dict:
    def check():
        job = jobs.get(job_id)
        assert job["status"] in ("queued", "running"), (job, jobs.log_tail(job_id))
        return job["step"] >= step and job

    return wait_for(check, timeout, f"{job_id} to reach step {step}")


def pid_of(jobs: JobService, job_id: str) -> int:
    return jobs.store.query_one("SELECT pid FROM jobs WHERE id = ?", (job_id,))["pid"]


# -- the happy path and the queue --------------------------------------------------------------
def test_job_runs_in_a_child_process_and_a_second_one_waits_queued(jobs):
    first = jobs.create("selftest", params={"max_steps": 12, "save_every": 4, "step_delay_s": 0.15})
    second = jobs.create("selftest", params={"max_steps": 3})
    assert first["status"] == "queued" and first["total_steps"] == 12
    assert (jobs.runs_dir / first["id"] / "config.json").exists()

    running = wait_step(jobs, first["id"], 1)
    assert running["status"] == "running" and 0 < running["progress"] < 1
    pid = pid_of(jobs, first["id"])
    assert pid and pid != os.getpid() and _group_alive(pid)
    assert jobs.get(second["id"])["status"] == "queued"  # one slot: it waits

    done = wait_status(jobs, first["id"], ("completed", "failed"))
    assert done["status"] == "completed", done["error"]
    assert done["progress"] == 1.0 and done["step"] == 12 and done["artifact"] is None
    assert done["metrics"]["loss"] > 0 and "eval_loss" in done["metrics"]
    events = jobs.events(first["id"])
    assert [e["step"] for e in events] == list(range(1, 13))
    losses = [e["loss"] for e in events]
    assert sum(losses[-3:]) < sum(losses[:3])
    assert [e["step"] for e in jobs.events(first["id"], since_step=10)] == [11, 12]
    assert "selftest: done" in jobs.log_tail(first["id"])

    assert wait_status(jobs, second["id"], ("completed", "failed"))["status"] == "completed"
    assert [j["id"] for j in jobs.list()] == [second["id"], first["id"]]  # newest first


# -- killed, cancelled, resumed -----------------------------------------------------------------
@pytest.mark.parametrize("target", ["process group", "trainer only"])
def test_a_job_killed_from_outside_is_interrupted_and_resumes_without_repeating_steps(jobs, target):
    params = {"max_steps": 24, "save_every": 5, "step_delay_s": 0.1}
    job = jobs.create("selftest", params=params)
    wait_step(jobs, job["id"], 12)
    run_dir = jobs.run_dir(job["id"])
    if target == "process group":
        os.killpg(pid_of(jobs, job["id"]), signal.SIGKILL)
    else:  # what the OOM killer does: the trainer dies, the launcher reports it
        os.kill(json.loads(run_dir.started_path.read_text())["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    interrupted = wait_status(jobs, job["id"], ("interrupted", "failed", "completed"), timeout=10)
    assert interrupted["status"] == "interrupted", interrupted
    assert time.monotonic() - killed_at < 5
    assert "resume" in interrupted["error"].lower()
    checkpoint_step, _ = latest_checkpoint(run_dir)
    assert checkpoint_step in (10, 15, 20) and checkpoint_step <= interrupted["step"]
    if target == "trainer only":
        return

    resumed_at = time.time()
    assert jobs.resume(job["id"])["status"] in ("queued", "running")
    done = wait_status(jobs, job["id"], ("completed", "failed", "interrupted"))
    assert done["status"] == "completed", done
    assert done["step"] == 24 and done["error"] is None
    events = jobs.events(job["id"])
    assert [e["step"] for e in events] == list(range(1, 25))  # no step twice, none missing
    after = [e["step"] for e in events if e["time"] >= resumed_at]
    assert after[0] == checkpoint_step + 1  # continued right after the checkpoint
    assert f"resumed from step {checkpoint_step}" in jobs.log_tail(job["id"], 200)


def test_cancel_stops_within_the_grace_period_and_leaves_a_resumable_checkpoint(jobs):
    running = jobs.create("selftest", params=SLOW)
    queued = jobs.create("selftest", params={"max_steps": 3})
    wait_step(jobs, running["id"], 3)

    # A queued job is cancelled at once and never starts.
    assert jobs.cancel(queued["id"])["status"] == "cancelled"
    assert not jobs.run_dir(queued["id"]).started_path.exists()

    pid = pid_of(jobs, running["id"])
    t0 = time.monotonic()
    cancelled = jobs.cancel(running["id"])
    assert cancelled["status"] == "cancelled"
    assert time.monotonic() - t0 < GRACE_S
    assert not _group_alive(pid)
    step, _ = latest_checkpoint(jobs.run_dir(running["id"]))
    assert step == cancelled["step"]  # the trainer saved where it stopped
    assert jobs.run_dir(running["id"]).read_result()["status"] == "cancelled"
    with pytest.raises(Conflict):
        jobs.cancel(running["id"])

    # Resumable: it runs again from that checkpoint; a studio shutdown then interrupts it.
    jobs.resume(running["id"])
    wait_step(jobs, running["id"], step + 2)
    pid = pid_of(jobs, running["id"])
    jobs.shutdown()
    after = jobs.get(running["id"])
    assert after["status"] == "interrupted" and not _group_alive(pid)
    assert latest_checkpoint(jobs.run_dir(running["id"]))[0] == after["step"]
    assert jobs.get(queued["id"])["status"] == "cancelled"


def test_a_restarted_studio_never_leaves_a_job_running(tmp_path):
    old = make_service(tmp_path)
    job = old.create("selftest", params=SLOW)
    wait_step(old, job["id"], 2)
    waiting = old.create("selftest", params={"max_steps": 3})
    pid = pid_of(old, job["id"])
    old.shutdown(terminate_jobs=False)  # the studio dies; its child does not
    assert _group_alive(pid) and old.get(job["id"])["status"] == "running"

    new = make_service(tmp_path)
    try:
        new.recover()
        after = new.get(job["id"])
        assert after["status"] == "interrupted" and after["step"] >= 2
        assert not _group_alive(pid)
        # The queued job is picked up by the new studio's scheduler.
        assert wait_status(new, waiting["id"], ("completed", "failed"))["status"] == "completed"
        assert new.get(job["id"])["status"] == "interrupted"
    finally:
        new.shutdown()


def test_a_failing_trainer_marks_the_job_failed_with_the_log_tail(jobs):
    job = jobs.create("selftest", params={"max_steps": 10, "fail_at_step": 3})
    failed = wait_status(jobs, job["id"], ("completed", "failed", "interrupted"))
    assert failed["status"] == "failed"
    assert "RuntimeError: selftest: failing on purpose at step 3" in failed["error"]
    assert len(failed["error"].splitlines()) <= 20
    assert failed["step"] == 2
    with pytest.raises(Conflict):
        jobs.resume(job["id"])


# -- validation (nothing is started, nothing is written) ---------------------------------------
def test_invalid_requests_change_nothing(tmp_path):
    jobs = make_service(tmp_path, max_concurrent_jobs=0)
    with pytest.raises(Invalid, match="Unknown job kind 'text-gan'.*selftest"):
        jobs.create("text-gan")
    with pytest.raises(Invalid, match="'warp_speed'.*Accepted: max_steps"):
        jobs.create("selftest", params={"warp_speed": 9})
    with pytest.raises(Invalid, match="'max_steps'"):
        jobs.create("selftest", params={"max_steps": "many"})
    with pytest.raises(NotFound):
        jobs.create("selftest", dataset_id="ds_missing")
    with pytest.raises(NotFound):
        jobs.create("selftest", dataset_id="../../etc")
    with pytest.raises(Forbidden):
        jobs.create("selftest", user=User(name="guest", is_admin=False, is_guest=True))
    assert jobs.list() == [] and list(jobs.runs_dir.iterdir()) == []

    for bad in ("job_0000000000000000", "../studio.db", "kinds"):
        with pytest.raises(NotFound):
            jobs.get(bad)
        with pytest.raises(NotFound):
            jobs.events(bad)

    queued = jobs.create("selftest", params={"max_steps": 3})
    assert queued["status"] == "queued"
    with pytest.raises(Conflict, match="only interrupted or cancelled"):
        jobs.resume(queued["id"])
    cmd = jobs.command_for(queued["id"])
    assert cmd[cmd.index("-m", 2) + 1 :] == [
        "engines.selftest.train",
        "--run-dir",
        str(jobs.runs_dir / queued["id"]),
    ]
    assert "--cpu" in cmd and "shell" not in " ".join(cmd)
    jobs.shutdown()


def test_kinds_lists_selftest_with_documented_defaults(tmp_path):
    kinds = {k["kind"]: k for k in make_service(tmp_path).kinds()}
    selftest = kinds["selftest"]
    assert selftest["defaults"]["max_steps"] == 50
    assert all(p["doc"] for p in selftest["params"])


def test_a_completed_artifact_becomes_an_adapters_row(tmp_path):
    jobs = make_service(tmp_path, max_concurrent_jobs=0)
    job = jobs.create("selftest")
    run_dir = jobs.run_dir(job["id"])
    (run_dir.path / "gan.safetensors").write_bytes(b"x")
    artifact = {"type": "gan", "path": "gan.safetensors", "name": "My GAN", "base_model": "starter/demo"}
    jobs.runner.settle(job["id"], "completed", artifact=artifact)
    done = jobs.get(job["id"])
    assert done["artifact"]["type"] == "gan" and done["artifact"]["id"].startswith("ad_")
    row = jobs.store.query_one("SELECT * FROM adapters WHERE id = ?", (done["artifact"]["id"],))
    assert row["path"] == f"runs/{job['id']}/gan.safetensors" and row["job_id"] == job["id"]
    assert row["base_model"] == "starter/demo" and row["name"] == "My GAN"
    with pytest.raises(ValueError):
        jobs.runner.settle(job["id"], "completed", artifact={"type": "gan", "path": "/etc/passwd"})
    with pytest.raises(ValueError):
        jobs.runner.settle(job["id"], "completed", artifact={"type": "checkpoint", "path": "gan.safetensors"})


def test_final_status_rules():
    assert _final_status("completed", "cancel", True) == "completed"
    assert _final_status("cancelled", "cancel", True) == "cancelled"
    assert _final_status(None, "cancel", True) == "cancelled"  # SIGKILLed after the grace period
    assert _final_status(None, None, True) == "interrupted"  # killed from outside
    assert _final_status("cancelled", None, True) == "interrupted"  # SIGTERM we did not send
    assert _final_status("cancelled", "shutdown", True) == "interrupted"
    assert _final_status("failed", None, True) == "failed"
    assert _final_status(None, None, False) == "failed"  # never started (import error, bad args)


def test_error_text_is_redacted():
    text = _redact("token=abc123 and hf_abcdefghijklmnopqrstu and password: hunter2")
    assert "abc123" not in text and "hf_abcdefghijklmnop" not in text and "hunter2" not in text


def test_one_process_starts_the_trainer_as_accelerate_would_without_its_launcher(jobs):
    from studio.services.job_processes import direct_launch

    run_dir = jobs.runs_dir / "job_x"
    cmd = jobs.runner.launch_command("selftest", run_dir)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    child, env, said = direct_launch(cmd, {"PYTHONPATH": "/somewhere", "HF_HUB_OFFLINE": "1"})
    assert child == [sys.executable, "-m", "engines.selftest.train", "--run-dir", str(run_dir)]
    assert env["PYTHONPATH"] == "/somewhere" and env["HF_HUB_OFFLINE"] == "1"  # the job's own environment kept
    assert env["ACCELERATE_USE_CPU"] == str(jobs.runner.config.device == "cpu")
    assert env["ACCELERATE_MIXED_PRECISION"] == "no"
    # several processes, or a command that is not accelerate's launch: the launcher runs as it is
    assert direct_launch(jobs.runner.launch_command("selftest", run_dir, 2), {}) is None
    assert direct_launch([sys.executable, "-m", "engines.selftest.train"], {}) is None
