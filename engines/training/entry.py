"""`python -m engines.<kind>.train --run-dir DIR`: the one entry point every trainer module ends with."""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engines.training.params import resolve_params
from engines.training.run_dir import RunDir, StopSignal, is_main_process

EXIT_FAILED = 1  # run() raised; result.json says "failed"
EXIT_CANCELLED = 128 + signal.SIGTERM  # stopped on request after saving a checkpoint (shell-style 143)


def trainer_main(
    run_fn: Callable[[Any, RunDir], dict[str, Any] | None], config_cls: type, argv: list[str] | None = None
) -> typing.NoReturn:
    """`python -m engines.<kind>.train --run-dir DIR`: read config.json, run, write result.json.

    Exit codes: 0 completed, EXIT_CANCELLED stopped by a signal (checkpoint saved),
    EXIT_FAILED run raised (traceback on stderr → train.log). The studio trusts result.json.
    """
    parser = argparse.ArgumentParser(description=f"Train one job ({config_cls.__name__}).")
    parser.add_argument(
        "--run-dir", required=True, type=Path, help="the job's run folder (holds config.json)"
    )
    args = parser.parse_args(argv)
    run_dir = RunDir(args.run_dir)
    run_dir.stop = StopSignal().install()
    main = is_main_process()
    if main:
        run_dir.mark_started()
    try:
        config = resolve_params(config_cls, run_dir.read_job().params)
        result = dict(run_fn(config, run_dir) or {})
    except Exception as exc:
        traceback.print_exc()
        sys.stderr.flush()
        if main:
            run_dir.write_result({"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]})
        sys.exit(EXIT_FAILED)
    status = result.get("status") or "completed"
    if main:
        run_dir.write_result(
            {"status": status, "metrics": result.get("metrics") or {}, "artifact": result.get("artifact")}
        )
    sys.stdout.flush()
    sys.exit(0 if status == "completed" else EXIT_CANCELLED)
