"""What a job made along the way, for the Training tab: the newest sample images (a gallery) and the
newest spoken samples (players, each labelled with the step and the sentence it says). Paths come from
the job's events and are resolved inside its run folder only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_SAMPLES = 8  # images in the gallery
SPOKEN_PLAYERS = 2  # audio players: the held-out sentences a speech job speaks at each save point
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
AUDIO_SUFFIXES = (".wav", ".flac")


def _inside(root: Path, rel: Any, suffixes: tuple[str, ...]) -> Path | None:
    path = (root / str(rel)).resolve()
    ok = path.is_relative_to(root) and path.suffix.lower() in suffixes and path.is_file()
    return path if ok else None


def sample_paths(run_dir: Path, events: list[dict[str, Any]]) -> list[str]:
    """The newest sample images named by events, resolved inside the run folder only."""
    root = run_dir.resolve()
    out: list[str] = []
    for event in reversed(events):
        for rel in reversed(event.get("samples") or []):
            path = _inside(root, rel, IMAGE_SUFFIXES)
            if path is not None:
                out.append(str(path))
            if len(out) >= MAX_SAMPLES:
                return out
    return out


def spoken_samples(run_dir: Path, events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(path, label) of the newest event's spoken samples, e.g. 'Step 80 · "The cat sat."'; [] for none."""
    root = run_dir.resolve()
    for event in reversed(events):
        clips = [(i, p) for i, rel in enumerate(event.get("samples") or [])
                 if (p := _inside(root, rel, AUDIO_SUFFIXES)) is not None]
        if clips:
            texts = event.get("sample_texts") or []
            step = _saved_step(event.get("samples")[clips[0][0]], event.get("step"))
            return [(str(p), f"Step {step} · “{texts[i]}”" if i < len(texts) else f"Step {step}")
                    for i, p in clips[:SPOKEN_PLAYERS]]
    return []


def _saved_step(rel: str, fallback: Any) -> Any:
    """The step a sample file was made at (`samples/step-<N>-<k>.wav`): step 0 arrives with step 1's event."""
    name = Path(str(rel)).stem
    parts = name.split("-")
    return int(parts[1]) if len(parts) >= 2 and parts[0] == "step" and parts[1].isdigit() else fallback
