"""The processes behind jobs: signalling a trainer's process group, telling whether it still
lives (zombies excluded, pid reuse guarded), reading the end of its log without secrets, how many
processes a job asks for, and what its outcome and events mean for the job's row."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

SECRETS = [
    (re.compile(r"\bhf_[A-Za-z0-9]{16,}"), "hf_***"),
    (re.compile(r"\baigc_[A-Za-z0-9_-]{16,}"), "aigc_***"),
    (re.compile(r"(?i)\b(token|password|passwd|secret|api[_-]?key)(\s*[=:]\s*)\S+"), r"\1\2***"),
]


def tail(path: Path, n: int, max_bytes: int = 256 * 1024) -> str:
    """The last n lines of a text file, reading at most max_bytes from its end."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - max_bytes, 0))
            data = f.read()
    except FileNotFoundError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-max(int(n), 0) :]) if n > 0 else ""


def redact(text: str) -> str:
    for pattern, repl in SECRETS:
        text = pattern.sub(repl, text)
    return text


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(pgid: int) -> list[int] | None:
    """Live (not zombie) pids in a process group, from /proc; None where /proc is missing."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    members = []
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(d.name))
    return members


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    members = group_members(pgid)
    return True if members is None else bool(members)


def group_is_job(pgid: int, run_dir: Path) -> bool:
    """Guard against pid reuse after a restart: some member works in this run folder, or its command
    line names it (a trainer the preloaded launcher forked has the launcher's command line)."""
    if not group_alive(pgid):
        return False
    members = group_members(pgid)
    if members is None:
        return True
    folder = os.path.realpath(run_dir)
    for pid in members:
        try:
            if os.path.realpath(f"/proc/{pid}/cwd") == folder:
                return True
            if str(run_dir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def relative_paths(text: str, data_dir: Path) -> str:
    """`text` with the data dir's absolute prefix taken off its paths: logs and errors shown
    through the API say `runs/<job>/train.log`, never where the studio lives on the server."""
    for root in sorted({str(data_dir), str(Path(data_dir).resolve())}, key=len, reverse=True):
        text = re.sub(re.escape(root.rstrip("/")) + r"(/|(?![\w.-]))", _strip_root, text)
    return text


def _strip_root(match: re.Match) -> str:
    return "" if match.group(1) == "/" else "."


def final_status(outcome: str | None, stop_reason: str | None, started: bool) -> str:
    """result.json's status + why we stopped it + whether the trainer got going → the job status."""
    if outcome == "completed":
        return "completed"  # even if a stop request came too late to matter
    if stop_reason == "cancel":
        return "cancelled"
    if stop_reason in ("external", "shutdown") or outcome == "cancelled" or (outcome is None and started):
        return "interrupted"  # stopped by a signal we did not send as a cancel: resumable
    return "failed"  # it raised (result "failed") or never started (bad module, bad arguments)


def merge_metrics(metrics: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(metrics)
    for e in events:
        for k, v in e.items():
            if (
                k not in ("step", "time", "total_steps")
                and isinstance(v, int | float)
                and not isinstance(v, bool)
            ):
                out[k] = v
    return out


def num_processes(params: dict) -> int:
    """The job's `num_processes` (kinds without the field train in one process)."""
    try:
        return max(1, int(params.get("num_processes") or 1))
    except (TypeError, ValueError):
        return 1


def free_port() -> int:
    """A free loopback port for the processes of one job to meet on (jobs may run side by side)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def direct_launch(cmd: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str], str] | None:
    """`accelerate launch` of one process, prepared here: the trainer's own command and the
    environment accelerate's simple launcher would give it (accelerate's argument parser, its config
    file and its `prepare_simple_launcher_cmd_env`), so the job runs without the launcher's extra
    interpreter, which imports torch only to start one child and wait (about 3 s per job on a
    2-core CPU). Returns (command, environment, what accelerate said: for train.log); None when
    accelerate would not use its simple launcher (several processes, or a config file that asks for
    DeepSpeed, FSDP, TPUs, …): then the launcher runs as it is."""
    import logging
    try:
        at = cmd.index("accelerate.commands.launch")
    except ValueError:
        return None
    try:
        from accelerate.commands.launch import _validate_launch_command, launch_command_parser
        from accelerate.utils.launch import prepare_simple_launcher_cmd_env

        said: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
        said_by = logging.getLogger("accelerate.commands.launch")
        said_by.addHandler(handler)
        propagate, said_by.propagate = said_by.propagate, False
        try:
            args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args(cmd[at + 1 :]))
        finally:
            said_by.removeHandler(handler)
            said_by.propagate = propagate
        special = ("use_deepspeed", "use_fsdp", "use_megatron_lm", "multi_gpu", "tpu")
        if any(getattr(args, name, False) for name in special) and not args.cpu:
            return None
        if defaults is not None and str(getattr(defaults, "compute_environment", "")).endswith("SAGEMAKER"):
            return None
        if (getattr(args, "num_processes", 1) or 1) > 1:
            return None
        child, child_env = prepare_simple_launcher_cmd_env(args)
    except (Exception, SystemExit):  # another accelerate than this was written for (argparse exits): as it is
        return None
    # accelerate starts from this process's environment; keep the job's own on top of what it adds
    added = {k: v for k, v in child_env.items() if os.environ.get(k) != v}
    return child, {**env, **added}, "\n".join(said)
