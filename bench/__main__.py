"""`python -m bench [--quick] [--only NAME …] [--out results.json]`: every figure as a ratio against the
plain library measured in the same run. See bench/__init__.py for what is measured and how."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.core import REPO, Context, Figure, default_threads, describe_device
from bench.groups import ALL_FIGURES, GROUPS, failed, select, unknown


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and tokens (about 2–3 minutes on a CPU)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="figure names or prefixes (e.g. text.generate.bs1, memory)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for studio and baseline alike (default: half the cores, at least 1)")
    parser.add_argument("--work-dir", type=Path, help="keep built models here (default: a temp dir, removed after)")
    parser.add_argument("--list", action="store_true", help="list the figure names and exit")
    return parser.parse_args(argv)


def line(f: Figure) -> str:
    def num(v: float | None) -> str:
        if v is None:
            return "—"
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"

    value = f"{num(f.value)} {f.unit}"
    plain = f"plain {num(f.baseline)} {f.unit}" if f.baseline is not None else ""
    ratio = f"×{f.ratio:.2f}" if f.ratio is not None else ""
    return f"{f.name:<42} {value:>16}  {plain:<24} {ratio:>6}  {f.note}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print("\n".join(ALL_FIGURES))
        return 0
    if args.only and unknown(args.only):
        print(f"Unknown figure(s): {', '.join(unknown(args.only))}. Known: {', '.join(ALL_FIGURES)}", file=sys.stderr)
        return 2
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    threads = args.threads or default_threads()
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="aigc-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=args.quick, device=device, threads=threads, work_dir=work_dir.resolve(),
                  reps=3 if args.quick else 5, warmup=1)
    described = describe_device(device, threads)
    print(f"device: {described}{' · quick' if args.quick else ''}", flush=True)
    figures: list[Figure] = []
    t_start = time.perf_counter()
    try:
        for group, names in select(args.only).items():
            t0 = time.perf_counter()
            for f in run_child(group, names, ctx):
                figures.append(f)
                print(line(f), flush=True)
            print(f"  ({group}: {time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    order = {n: i for i, n in enumerate(ALL_FIGURES)}
    figures.sort(key=lambda f: order.get(f.name, len(order)))
    result = {"device": described, "quick": args.quick, "threads": threads,
              "elapsed_s": round(time.perf_counter() - t_start, 1), "figures": [f.to_dict() for f in figures]}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out} ({result['elapsed_s']:.0f} s)")
    return 0


def run_child(group: str, names: set[str], ctx: Context) -> list[Figure]:
    """One group in a fresh process; its figures come back through a JSON file."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        cmd = [sys.executable, "-m", "bench.groups", group, "--names", *sorted(names),
               "--context", json.dumps(ctx.to_json()), "--out", str(out)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stdout or "").strip().splitlines()[-3:]
            sys.stderr.write(proc.stdout or "")
            return failed(names, group, f"not measured: the {group} benchmark exited {proc.returncode}: {' | '.join(tail)}")
        figures = [Figure(**d) for d in json.loads(out.read_text(encoding="utf-8"))]
        if any(f.value is None for f in figures):
            sys.stderr.write(proc.stdout or "")  # the traceback of what failed
        return figures


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["GROUPS", "main"]
