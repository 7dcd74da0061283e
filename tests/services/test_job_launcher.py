"""The preloaded trainer launcher: a trainer it forks is `python -m <module> ARGS` in every way the
studio sees (session, folder, environment, log, exit code, traceback), and the job runner uses it
once it is ready, with the pid-reuse guard still telling its jobs apart."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time

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


def test_jobs_are_forked_by_the_launcher_the_first_one_started(tmp_path):
    from studio.config import StudioConfig
    from studio.services.auth import User
    from studio.services.job_launcher import LAUNCHERS
    from studio.services.jobs import JobService
    from studio.store import Store

    config = StudioConfig(data_dir=tmp_path, device="cpu", job_grace_s=5)
    jobs = JobService(config, Store(config.data_dir / "studio.db"))
    admin = User(name="admin", is_admin=True)

    def run(params: dict) -> tuple[dict, int]:
        job = jobs.create("selftest", params=params, user=admin)
        wait_for(lambda: jobs.get(job["id"])["step"] >= 1, timeout=60)
        pid = jobs.store.query_one("SELECT pid FROM jobs WHERE id = ?", (job["id"],))["pid"]
        with open(f"/proc/{pid}/stat") as f:
            parent = int(f.read().rsplit(")", 1)[1].split()[1])
        wait_for(lambda: jobs.get(job["id"])["status"] != "running", timeout=60)
        return jobs.get(job["id"]), parent

    try:
        first, parent = run({"max_steps": 4, "step_delay_s": 0.2})  # waits for its environment's launcher
        launchers = {launcher._proc.pid for launcher in LAUNCHERS._by_env.values() if launcher.wait_ready(0)}
        assert parent in launchers  # forked, not a fresh interpreter
        assert first["status"] == "completed" and first["step"] == 4
        done, parent = run({"max_steps": 6, "step_delay_s": 0.2})
        assert parent in launchers  # the same launcher again
        assert done["status"] == "completed" and done["step"] == 6
        log = (jobs.runs_dir / done["id"] / "train.log").read_text()
        assert log.startswith("--- ") and "selftest" in log  # the usual header, then the trainer's output
    finally:
        jobs.shutdown()


def test_jobs_share_a_launcher_only_where_imports_would_read_the_same_environment():
    from studio.services.job_launcher import import_environment

    base = {"PATH": "/bin", "HF_HOME": "/h", "PYTHONPATH": "/repo"}
    assert import_environment(base) == import_environment({**base, "PATH": "/usr/bin", "STUDIO_X": "1"})
    for changed in ({"HF_HUB_OFFLINE": "1"}, {"OMP_NUM_THREADS": "2"}, {"HF_HOME": "/other"},
                    {"TRANSFORMERS_VERBOSITY": "info"}, {"PYTHONPATH": "/elsewhere"}):
        assert import_environment(base) != import_environment({**base, **changed}), changed


def test_a_launcher_that_cannot_get_ready_leaves_jobs_to_start_plainly(tmp_path):
    # an interpreter that cannot find its standard library exits at once
    launcher = PreloadedLauncher({"PATH": os.environ.get("PATH", ""), "PYTHONHOME": str(tmp_path / "nowhere")})
    launcher.warm()
    t0 = time.monotonic()
    assert not launcher.wait_ready(30)
    assert time.monotonic() - t0 < 10  # told when it died, not after the whole wait
    assert launcher.start([sys.executable, "-m", "x"], tmp_path, {}, tmp_path / "log") is None


def test_only_jobs_without_a_gpu_runtime_to_inherit_are_forked(monkeypatch):
    import torch

    from studio.services.job_launcher import enabled

    monkeypatch.setattr(torch.version, "cuda", "12.4")  # a CUDA build: a GPU job starts afresh
    assert not enabled({})
    assert enabled({"ACCELERATE_USE_CPU": "True"})  # a CPU job is forked all the same
    monkeypatch.setenv("STUDIO_PRELOAD_TRAINERS", "0")
    assert not enabled({"ACCELERATE_USE_CPU": "True"})
