"""The preloaded trainer launcher: a trainer it forks is `python -m <module> ARGS` in every way the
studio sees (session, folder, environment, log, exit code, traceback), and the job runner uses it
once it is ready, with the pid-reuse guard still telling its jobs apart."""

from __future__ import annotations

import os
import signal
import sys
import textwrap

import pytest

from studio.services.job_launcher import PreloadedLauncher
from studio.services.job_processes import group_is_job
from tests.waiting import wait_for

MODULE = """
import os, sys, time
print("argv", sys.argv[1:], "name", __name__)
print("cwd", os.getcwd())
print("env", os.environ.get("LAUNCH_TEST"), "other", os.environ.get("ONLY_IN_THE_LAUNCHER"))
print("session", os.getsid(0) == os.getpid(), "stdin", sys.stdin.read() == "")
import torch
print("threads", torch.get_num_threads())
if sys.argv[1] == "fail":
    raise RuntimeError("the trainer broke")
if sys.argv[1] == "sleep":
    time.sleep(60)
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    pkg = tmp_path_factory.mktemp("mods")
    (pkg / "launch_probe.py").write_text(textwrap.dedent(MODULE))
    launcher = PreloadedLauncher()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONLY_IN_THE_LAUNCHER", "yes")  # in the launcher's environment, not the job's
        launcher.warm()
    assert launcher.wait_ready(60), "the launcher did not get ready"
    launcher.probe_path = str(pkg)
    yield launcher
    launcher._proc.stdin.close()
    launcher._proc.wait(10)


def start(launcher, tmp_path, arg: str):
    env = {"PYTHONPATH": launcher.probe_path, "LAUNCH_TEST": "job-env", "OMP_NUM_THREADS": "1",
           "PATH": os.environ.get("PATH", "")}  # fmt: skip
    log = tmp_path / "train.log"
    proc = launcher.start([sys.executable, "-m", "launch_probe", arg], tmp_path, env, log)
    assert proc is not None
    return proc, log


def test_a_forked_trainer_runs_like_a_fresh_interpreter(launcher, tmp_path):
    proc, log = start(launcher, tmp_path, "3")
    assert proc.wait(30) == 3
    out = log.read_text()
    assert "argv ['3'] name __main__" in out
    assert f"cwd {tmp_path}" in out
    assert "env job-env other None" in out  # the job's environment, only it
    assert "session True stdin True" in out  # its own session (the job's process group), no stdin
    assert "threads 1" in out  # OMP_NUM_THREADS of the job, though torch was imported before it


def test_a_failing_trainer_leaves_its_traceback_and_exit_code(launcher, tmp_path):
    proc, log = start(launcher, tmp_path, "fail")
    assert proc.wait(30) == 1
    assert "RuntimeError: the trainer broke" in log.read_text()


def test_a_killed_trainer_reports_the_signal_and_is_told_apart_by_its_folder(launcher, tmp_path):
    proc, log = start(launcher, tmp_path, "sleep")
    wait_for(lambda: "threads" in log.read_text(), timeout=30)
    assert proc.poll() is None
    assert os.getpgid(proc.pid) == proc.pid
    assert group_is_job(proc.pid, tmp_path)  # its command line is the launcher's: its folder says
    assert not group_is_job(proc.pid, tmp_path / "another-job")
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL


def test_a_job_is_forked_by_the_ready_launcher_and_ends_as_before(tmp_path):
    from studio.config import StudioConfig
    from studio.services.auth import User
    from studio.services.job_launcher import LAUNCHER
    from studio.services.jobs import JobService
    from studio.store import Store

    config = StudioConfig(data_dir=tmp_path, device="cpu", job_grace_s=5)
    jobs = JobService(config, Store(config.data_dir / "studio.db"))
    admin = User(name="admin", is_admin=True)
    try:
        LAUNCHER.warm()
        assert LAUNCHER.wait_ready(60)
        job = jobs.create("selftest", params={"max_steps": 6, "step_delay_s": 0.2}, user=admin)
        wait_for(lambda: jobs.get(job["id"])["step"] >= 1, timeout=60)
        pid = jobs.store.query_one("SELECT pid FROM jobs WHERE id = ?", (job["id"],))["pid"]
        with open(f"/proc/{pid}/stat") as f:
            parent = int(f.read().rsplit(")", 1)[1].split()[1])
        assert parent == LAUNCHER._proc.pid  # forked, not a fresh interpreter
        wait_for(lambda: jobs.get(job["id"])["status"] != "running", timeout=60)
        done = jobs.get(job["id"])
        assert done["status"] == "completed" and done["step"] == 6
        assert "--- " in (jobs.runs_dir / job["id"] / "train.log").read_text()  # the usual header, then its output
    finally:
        jobs.shutdown()
