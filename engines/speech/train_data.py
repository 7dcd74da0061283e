"""What `speech-finetune` trains on: the usable clips of a studio audio dataset, as token ids and the
mel frames the model learns to predict.

A studio audio dataset (studio/services/datasets/audio.py) is a folder of prepared WAV clips and
`metadata.jsonl` rows ({file_name, text, duration_s, issues, …}): already mono, loudness-normalised
and cut at pauses. A clip is usable when it holds speech (silero-vad found some), has a transcript,
and lasts between MIN_CLIP_S and MAX_CLIP_S seconds. Clips are resampled (soxr) to the model's
16 kHz; texts go through the same English normalisation synthesis uses (numbers written out …).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.speech.prep import MIN_CLIP_S, NO_SPEECH

METADATA = "metadata.jsonl"
MAX_CLIP_S = 15.0  # the model's positions hold ~16 s of frames; prepared clips are at most 15 s
MIN_USABLE = 2  # one to learn from and one to hold out


@dataclass
class Clip:
    file_name: str
    text: str
    duration_s: float


@dataclass
class Example:
    text: str
    input_ids: list[int]
    mel: np.ndarray  # (frames, 80) log10 mel
    audio: np.ndarray  # (samples,) at 16 kHz, for pitch and playback


def _manifest_kind(folder: Path) -> str:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "audio" if (folder / METADATA).is_file() else "unknown"
    return str(manifest.get("kind") or "audio") if isinstance(manifest, dict) else "unknown"


def read_rows(folder: Path) -> list[dict[str, Any]]:
    rows = []
    with open(folder / METADATA, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if isinstance(row, dict):
                    rows.append(row)
    return rows


def usable_clips(folder: Path) -> tuple[list[Clip], dict[str, int]]:
    """(the clips training uses, {reason: clips left out})."""
    left_out: dict[str, int] = {}
    clips = []
    for row in read_rows(folder):
        issues = row.get("issues") or []
        text = str(row.get("text") or "").strip()
        duration = float(row.get("duration_s") or 0.0)
        reason = None
        if NO_SPEECH in issues:
            reason = "no speech"
        elif not text:
            reason = "no transcript"
        elif duration < MIN_CLIP_S:
            reason = f"shorter than {MIN_CLIP_S} s"
        elif duration > MAX_CLIP_S:
            reason = f"longer than {MAX_CLIP_S:g} s"
        elif not (folder / str(row.get("file_name", ""))).is_file():
            reason = "file missing"
        if reason:
            left_out[reason] = left_out.get(reason, 0) + 1
        else:
            clips.append(Clip(str(row["file_name"]), text, duration))
    return clips, left_out


def check_dataset(dataset_path: Path | None) -> list[Clip]:
    """ValueError (→ 422) for data a voice cannot learn from; else the usable clips."""
    if dataset_path is None:
        raise ValueError("A speech-finetune job needs an audio dataset: upload a .zip of .wav/.flac clips with "
                         "a metadata.csv ('clip1.wav|What the clip says.') in the Datasets tab, then pick it.")
    folder = Path(dataset_path)
    kind = _manifest_kind(folder)
    if kind != "audio":
        raise ValueError(f"A speech-finetune job learns from recorded speech; '{folder.name}' is a {kind} "
                         "dataset. Pick an audio dataset (a .zip of clips with metadata.csv).")
    clips, left_out = usable_clips(folder)
    if len(clips) < MIN_USABLE:
        why = "; ".join(f"{n} {reason}" for reason, n in left_out.items()) or "the dataset lists no clips"
        raise ValueError(f"The dataset has {len(clips)} usable clip(s) after preparation ({why}); a voice needs "
                         f"at least {MIN_USABLE} clips of speech, {MIN_CLIP_S}–{MAX_CLIP_S:g} s long, each with its "
                         "transcript. The Datasets tab's clip table shows what is wrong with each.")
    return clips


def split(clips: list[Clip], held_out: int, seed: int) -> tuple[list[Clip], list[Clip]]:
    """(train, held out): a seeded shuffle; at most a fifth (at least one) is held out."""
    order = list(clips)
    random.Random(seed).shuffle(order)
    n = max(1, min(held_out, len(order) // 5 or 1))
    return order[n:], order[:n]


def load_examples(folder: Path, clips: list[Clip], processor: Any) -> list[Example]:
    import soundfile as sf

    from engines.speech.prep import resample, to_mono
    from engines.speech.text_normalize import normalize_english
    from engines.speech.voice import SAMPLE_RATE

    out = []
    for clip in clips:
        data, rate = sf.read(str(folder / clip.file_name), dtype="float32", always_2d=False)
        audio = resample(to_mono(data), rate, SAMPLE_RATE)
        text = normalize_english(clip.text)
        ids = processor(text=text)["input_ids"]
        mel = processor(audio_target=audio, sampling_rate=SAMPLE_RATE)["input_values"][0]
        out.append(Example(text=text, input_ids=list(ids), mel=np.asarray(mel, dtype=np.float32), audio=audio))
    return out


def collate(examples: list[Example], speaker: Any, reduction_factor: int, pad_id: int) -> dict[str, Any]:
    """A padded batch for SpeechT5ForTextToSpeech: labels padded with -100 (its loss masks them), frame
    counts rounded up to the reduction factor."""
    import torch

    n, mels = len(examples), examples[0].mel.shape[1]
    length = max(len(e.input_ids) for e in examples)
    frames = max(len(e.mel) for e in examples)
    frames += -frames % reduction_factor
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.long)
    labels = torch.full((n, frames, mels), -100.0)
    for i, e in enumerate(examples):
        ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[i, : len(e.input_ids)] = 1
        labels[i, : len(e.mel)] = torch.from_numpy(e.mel)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels,
            "speaker_embeddings": speaker.expand(n, -1)}


def batch_order(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The examples of step `step`: depends only on (seed, step), so a resumed run sees the same batches."""
    rng = random.Random(seed * 1_000_003 + step)
    return [rng.randrange(n) for _ in range(min(batch_size, max(n, 1)))]
