"""Peak resident memory: a fresh process that builds the app (UI included), idle, and one fresh
process per engine that builds the app, then loads that engine through its service and generates once.

    python -m bench.memory KIND --data-dir DIR      → prints {"rss_mb": …} (KIND: idle, text, image, speech, gan)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from bench import fixtures
from bench.core import REPO, Context, Figure

KINDS = ("idle", "text", "image", "speech", "gan")


def run(ctx: Context, names: set[str]) -> list[Figure]:
    for kind in ("text", "image", "speech"):  # built before, so no process pays for building them
        fixtures.starter(ctx, kind)
    figures = []
    for kind in KINDS:
        name = "memory.idle_rss_mb" if kind == "idle" else f"memory.{kind}_rss_mb"
        if name not in names:
            continue
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(ctx.threads)}
        proc = subprocess.run([sys.executable, "-m", "bench.memory", kind, "--data-dir", str(ctx.data_dir),
                               "--device", ctx.device], cwd=REPO, env=env, capture_output=True, text=True)
        try:
            rss = json.loads(proc.stdout.strip().splitlines()[-1])["rss_mb"]
            note = "peak RSS of a fresh process: the app built (UI included)" + (
                "" if kind == "idle" else f", then the {kind} engine loaded " + ("(a 32 px DCGAN artifact)" if kind == "gan" else "through its service (starter)") + " and run once")
            figures.append(Figure(name, rss, "MB", None, None, note))
        except (IndexError, ValueError, KeyError):
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            figures.append(Figure(name, None, "MB", note=f"not measured: {tail}"))
    return figures


def _gan_artifact(data_dir: Path) -> Path:
    """An (untrained) DCGAN saved the way a finished `gan` job saves it."""
    from engines.gan.model import GanConfig, build_models
    from engines.gan.train import write_artifact

    folder = data_dir / "models" / "trained" / "bench-gan"
    if not (folder / "generator.safetensors").is_file():
        generator, _ = build_models(GanConfig(resolution=32, ngf=32, ndf=32), seed=0)
        write_artifact(folder, generator, generator.config, {"name": "bench"})
    return folder


def measure(kind: str, data_dir: Path, device: str) -> float:
    from studio.app import build_app
    from studio.config import StudioConfig
    from studio.services.auth import LOCAL_ADMIN as BENCH

    app = build_app(StudioConfig(data_dir=data_dir, offline=True, device=device), ui=True)
    studio = app.state.studio
    if kind == "text":
        from studio.services.text import TextGenerateParams

        studio.text.generate(TextGenerateParams(prompt="The sea was gray", max_new_tokens=8, seed=1), user=BENCH)
    elif kind == "image":
        from studio.services.image import ImageGenerateParams

        studio.image.generate(ImageGenerateParams(prompt="a red fox", seed=1), user=BENCH)
    elif kind == "speech":
        from studio.services.speech import SpeechGenerateParams

        studio.speech.generate(SpeechGenerateParams(text="the sea was gray", seed=1), user=BENCH)
    elif kind == "gan":
        from engines.gan.generate import GanEngine

        GanEngine(_gan_artifact(data_dir), device=device).load().generate(num_outputs=1, seed=1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux → MiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    from bench.core import quiet_libraries

    quiet_libraries()
    rss = measure(args.kind, args.data_dir, args.device)
    print(json.dumps({"rss_mb": round(rss, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
