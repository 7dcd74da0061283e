"""The trainer conventions: params, events, checkpoints, the stop signal, the registry, selftest."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import torch

from engines.selftest.train import SelftestConfig, run
from engines.training import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    TRAINERS,
    EventLog,
    JobConfig,
    RunDir,
    describe_config,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_events,
    resolve_params,
    save_checkpoint,
    trainer_main,
    trainer_spec,
)

REPO = Path(__file__).resolve().parents[2]


@dataclass
class DemoConfig:
    """A config with one field of every kind resolve_params handles."""

    steps: int = 10  # how many
    rate: float = 0.1  # how fast
    flag: bool = False  # on or off
    method: Literal["lora", "full"] = "lora"  # which way
    augment: list[str] = field(default_factory=list)  # which augmentations
    rank: int | None = None  # optional

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("'steps' must be at least 1.")


def make_run_dir(path: Path, resume: bool = False, **params) -> RunDir:
    run_dir = RunDir(path)
    run_dir.write_job(
        JobConfig(job_id="job_test", kind="selftest", params=params, resume=resume, device="cpu")
    )
    return run_dir


# -- resolve_params ----------------------------------------------------------------------------
def test_resolve_params_rejects_unknown_names_and_lists_the_accepted_ones():
    with pytest.raises(ValueError) as err:
        resolve_params(DemoConfig, {"steps": 5, "stepz": 3, "lr": 1})
    msg = str(err.value)
    assert "'lr'" in msg and "'stepz'" in msg
    assert "Accepted: steps, rate, flag, method, augment, rank" in msg


def test_resolve_params_coerces_sensible_values():
    cfg = resolve_params(
        DemoConfig, {"steps": "7", "rate": 1, "flag": "true", "augment": ("flip",), "rank": 8.0}
    )
    assert cfg == DemoConfig(steps=7, rate=1.0, flag=True, augment=["flip"], rank=8)
    assert resolve_params(DemoConfig, None) == DemoConfig()
    assert resolve_params(DemoConfig, {"rank": None}).rank is None


@pytest.mark.parametrize(
    "params, field_name",
    [
        ({"steps": 1.5}, "steps"),
        ({"steps": True}, "steps"),
        ({"rate": "fast"}, "rate"),
        ({"flag": 1}, "flag"),
        ({"method": "half"}, "method"),
        ({"augment": "flip"}, "augment"),
        ({"augment": [1]}, "augment"),
        ({"rank": "big"}, "rank"),
        ({"steps": 0}, "steps"),  # range check in __post_init__
    ],
)
def test_resolve_params_names_the_field_with_a_wrong_value(params, field_name):
    with pytest.raises(ValueError, match=f"'{field_name}'"):
        resolve_params(DemoConfig, params)


def test_every_registered_trainer_has_a_documented_config_and_run():
    for kind in TRAINERS:
        spec = trainer_spec(kind)
        assert dataclasses.is_dataclass(spec.config_cls) and callable(spec.run), kind
        described = describe_config(spec.config_cls)
        undocumented = [p["name"] for p in described if not p["doc"]]
        assert undocumented == [], f"{kind}: give these fields a commented default: {undocumented}"


def test_describe_config_reads_the_field_comments():
    params = {p["name"]: p for p in describe_config(DemoConfig)}
    assert params["steps"] == {"name": "steps", "type": "int", "default": 10, "doc": "how many"}
    assert params["augment"]["default"] == [] and params["augment"]["doc"] == "which augmentations"


# -- events ------------------------------------------------------------------------------------
def test_event_log_writes_json_lines_and_tensorboard(tmp_path):
    run_dir = RunDir(tmp_path)
    with EventLog(run_dir) as log:
        for step in (1, 2, 3):
            log.append(step, loss=1.0 / step, samples=["samples/a.png"])
    lines = run_dir.events_path.read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    first = json.loads(lines[0])
    assert first["loss"] == 1.0 and first["samples"] == ["samples/a.png"] and first["time"] > 0
    assert list(run_dir.tensorboard_dir.glob("events.out.tfevents.*"))

    with open(run_dir.events_path, "a") as f:  # a trainer killed mid-write
        f.write('{"step": 4, "lo')
    assert [e["step"] for e in read_events(run_dir.events_path)] == [1, 2, 3]
    assert [e["step"] for e in run_dir.events(since_step=2)] == [3]


def test_event_log_on_resume_drops_steps_after_the_checkpoint(tmp_path):
    run_dir = RunDir(tmp_path)
    with EventLog(run_dir, tensorboard=False) as log:
        for step in range(1, 8):
            log.append(step, loss=float(step))
    with EventLog(run_dir, resume_step=5, tensorboard=False) as log:
        log.append(6, loss=0.5)
    assert [e["step"] for e in run_dir.events()] == [1, 2, 3, 4, 5, 6]
    assert run_dir.events()[-1]["loss"] == 0.5


# -- checkpoints -------------------------------------------------------------------------------
def test_checkpoints_rotate_and_round_trip_optimizer_state(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".tmp-step-9-1").mkdir()  # left by a process killed mid-save
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, model.state_dict(), {"optimizer": opt.state_dict()}, keep_last=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [30, 40]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    step, path = latest_checkpoint(tmp_path)
    assert step == 40 and path.name == "step-40"

    ckpt = load_checkpoint(path)  # state.pt loads with weights_only=True
    assert ckpt.step == 40
    assert torch.equal(ckpt.tensors["weight"], model.weight.detach())
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    fresh.load_state_dict(ckpt.extra_state["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_latest_checkpoint_is_none_without_checkpoints(tmp_path):
    assert latest_checkpoint(tmp_path) is None


# -- selftest, in process ----------------------------------------------------------------------
def test_selftest_loss_decreases_and_resume_matches_an_uninterrupted_run(tmp_path):
    full = make_run_dir(tmp_path / "full", max_steps=20, save_every=5)
    result = run(SelftestConfig(max_steps=20, save_every=5), full)
    losses = [e["loss"] for e in full.events()]
    assert len(losses) == 20 and sum(losses[-5:]) < sum(losses[:5]) / 1.5
    assert result["metrics"]["eval_loss"] < losses[0]

    split = make_run_dir(tmp_path / "split", max_steps=10, save_every=5)
    run(SelftestConfig(max_steps=10, save_every=5), split)
    make_run_dir(split.path, resume=True, max_steps=20, save_every=5)
    resumed = run(SelftestConfig(max_steps=20, save_every=5), split)
    assert [e["step"] for e in split.events()] == list(range(1, 21))
    # Same batches, weights and optimizer moments: the resumed run ends where the straight one does.
    assert resumed["metrics"]["loss"] == pytest.approx(result["metrics"]["loss"], rel=1e-5)
    a = load_checkpoint(latest_checkpoint(full)[1]).tensors
    b = load_checkpoint(latest_checkpoint(split)[1]).tensors
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_trainer_main_reports_a_failure_in_result_json(tmp_path, capsys):
    run_dir = make_run_dir(tmp_path, max_steps=5, fail_at_step=3)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(SystemExit) as exit_info:
            trainer_main(run, SelftestConfig, ["--run-dir", str(tmp_path)])
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    assert exit_info.value.code == EXIT_FAILED
    assert "failing on purpose at step 3" in capsys.readouterr().err
    assert run_dir.read_result()["status"] == "failed"
    assert [e["step"] for e in run_dir.events()] == [1, 2]


def test_trainer_main_rejects_unknown_params(tmp_path):
    make_run_dir(tmp_path, max_steps=5, warp_speed=9)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(SystemExit):
            trainer_main(run, SelftestConfig, ["--run-dir", str(tmp_path)])
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    result = RunDir(tmp_path).read_result()
    assert result["status"] == "failed" and "warp_speed" in result["error"]


# -- the stop signal, in a real child process --------------------------------------------------
def test_sigterm_saves_a_checkpoint_and_exits_as_cancelled(tmp_path):
    run_dir = make_run_dir(tmp_path, max_steps=1000, save_every=100, step_delay_s=0.05)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(run_dir.log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engines.selftest.train", "--run-dir", str(tmp_path)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(run_dir.events()) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, run_dir.log_path.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == EXIT_CANCELLED
    finally:
        if proc.poll() is None:
            proc.kill()
    last = run_dir.events()[-1]["step"]
    assert run_dir.read_result()["status"] == "cancelled"
    assert json.loads(run_dir.started_path.read_text())["pid"] == proc.pid
    assert latest_checkpoint(run_dir)[0] == last  # saved at the step it stopped on
    assert f"stopped at step {last}" in run_dir.log_path.read_text()
