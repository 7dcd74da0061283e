"""Audio datasets: clips listed in ``metadata.csv`` (LJSpeech style), each decoded and re-written as WAV.

``metadata.csv`` has one ``file_name|transcript`` line per clip (a header line is optional; the
LJSpeech form ``id|transcript|normalised transcript`` with names lacking ``.wav`` works too).
The stored folder holds ``000000.wav``, … (mono) and ``metadata.jsonl`` with ``file_name``,
``text``, ``duration_s``, ``sample_rate``, ``source`` (the uploaded file) and ``issues`` (plain
sentences; ``transcribed`` when the words are the recogniser's). Each clip is prepared as training
will hear it (engines/speech/prep.py): silence trimmed, loudness normalised, recordings longer
than 15 s cut at their pauses and transcribed; a clip with no speech is kept and marked.
"""

from __future__ import annotations

import json
import posixpath
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from engines.speech.prep import MAX_CLIP_S, NO_SPEECH, prepare
from studio.config import UploadLimits
from studio.services.datasets.text import read_utf8
from studio.services.datasets.uploads import Member
from studio.services.errors import Invalid, TooLarge, UnsupportedType

METADATA_CSV = "metadata.csv"
OTHER_AUDIO = (".mp3", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif", ".webm")  # named, not read
SHORT_CLIP_S = 0.5  # clips shorter than this get a warning
_WAVE_EXTENSIBLE = 0xFFFE
_PCM_ENCODINGS = {1, 3, 6, 7}  # PCM, IEEE float, A-law, µ-law: one block per frame
_HEADER_NAMES = {"file_name", "filename", "file", "path", "audio", "id", "wav"}


@dataclass
class _Entry:
    member: Member
    text: str
    where: str


def build_audio_dataset(
    members: list[Member], out_dir: Path, limits: UploadLimits, *, ignored: list[str] = ()
) -> tuple[int, dict, list[str]]:
    """Write the normalised audio folder; return (num_items, stats, warnings). `ignored`: the upload's
    files of types no dataset reads (an MP3 among them gets a message of its own)."""
    # 1. Sort the members into clips and metadata
    clips: dict[tuple[str, str], Member] = {}
    metadata: list[Member] = []
    unused: list[str] = []
    for m in members:
        if m.family == "image":
            raise UnsupportedType(
                f"{m.label} is an image, but this is an audio dataset. Choose the kind 'image', "
                "or upload a .zip of .wav/.flac files with metadata.csv."
            )
        if m.family == "audio":
            clips[(m.group, m.name)] = m
        elif m.basename.lower() == METADATA_CSV:
            metadata.append(m)
        else:
            unused.append(m.label)
    if not clips:
        other = [label for label in [*unused, *ignored] if posixpath.splitext(label)[1].lower() in OTHER_AUDIO]
        if other:
            raise Invalid(
                f"{other[0]}{f' and {len(other) - 1:,} more' if len(other) > 1 else ''}: "
                f"{posixpath.splitext(other[0])[1].lower()} audio is not read here. Convert the clips to .wav or "
                ".flac (e.g. `ffmpeg -i clip.mp3 clip.wav`) and upload them with the metadata.csv.",
                code="unsupported_audio_format",
            )
        raise Invalid(
            "The upload has no audio clips. Upload a .zip of .wav or .flac files with a metadata.csv.",
            code="empty_dataset",
        )
    if not metadata:
        raise Invalid(
            f"The upload has no {METADATA_CSV}. Add one with a 'file_name|transcript' line per clip, "
            "e.g. 'clip1.wav|Hello there.'",
            code="missing_file",
        )

    # 2. Transcripts from metadata.csv, in its order
    entries = [e for meta in metadata for e in _read_metadata(meta, clips, limits)]
    listed = {(e.member.group, e.member.name) for e in entries}
    untranscribed = [m.label for key, m in clips.items() if key not in listed]
    if not entries:
        raise Invalid(
            f"{metadata[0].label} lists no clips. Add a 'file_name|transcript' line per clip.",
            code="empty_dataset",
        )

    # 3. Decode, check and re-write every clip
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    cut = 0
    for e in entries:
        data, rate = load_audio(e.member, limits)  # (frames, channels)
        parts = prepare(data, rate, e.text)
        cut += len(parts) > 1
        for part in parts:
            file_name = f"{len(rows):06d}.wav"
            sf.write(out_dir / file_name, np.clip(part.audio, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")
            rows.append(
                {
                    "file_name": file_name,
                    "text": part.text,
                    "duration_s": part.duration_s,
                    "sample_rate": rate,
                    "source": e.member.label,
                    "issues": part.issues,
                    **({"transcribed": True} if part.transcribed else {}),
                }
            )
    with open(out_dir / "metadata.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    # 4. Stats and warnings
    durations = [r["duration_s"] for r in rows]
    rates = sorted({r["sample_rate"] for r in rows})
    stats = {
        "items": len(rows),
        "total_duration_s": round(sum(durations), 3),
        "min_duration_s": min(durations),
        "max_duration_s": max(durations),
        "mean_duration_s": round(sum(durations) / len(durations), 3),
        "sample_rates": rates,
    }
    silent = sum(NO_SPEECH in r["issues"] for r in rows)
    stats["clips_with_issues"] = sum(bool(r["issues"]) for r in rows)
    warnings = []
    if silent == len(rows):
        warnings.append("No clip holds speech that silero-vad can hear: a voice cannot learn from this dataset.")
    elif silent:
        warnings.append(f"{silent:,} clip{_s(silent)} hold{'s' if silent == 1 else ''} no speech; "
                        f"training leaves {'it' if silent == 1 else 'them'} out.")
    if cut:
        warnings.append(f"{cut:,} recording{_s(cut)} longer than {MAX_CLIP_S:g} s {'was' if cut == 1 else 'were'} "
                        "cut at the pauses and transcribed automatically (English only): check the words.")
    if untranscribed:
        shown = ", ".join(untranscribed[:3]) + (
            f" and {len(untranscribed) - 3:,} more" if len(untranscribed) > 3 else ""
        )
        warnings.append(
            f"Left out {len(untranscribed):,} clip{_s(len(untranscribed))} with no line in "
            f"{METADATA_CSV}: {shown}."
        )
    if len(rates) > 1:
        warnings.append(
            f"Clips have {len(rates)} different sample rates ({', '.join(map(str, rates))} Hz); "
            "training resamples them to the model's rate."
        )
    short = sum(d < SHORT_CLIP_S for d in durations)
    if short:
        warnings.append(
            f"{short:,} clip{_s(short)} {'is' if short == 1 else 'are'} shorter than {SHORT_CLIP_S} s."
        )
    empty = sum(not r["text"] for r in rows)
    if empty:
        warnings.append(f"{empty:,} clip{_s(empty)} {'has' if empty == 1 else 'have'} an empty transcript.")
    if unused:
        shown = ", ".join(unused[:3]) + (f" and {len(unused) - 3:,} more" if len(unused) > 3 else "")
        warnings.append(
            f"Ignored {len(unused):,} file{_s(len(unused))} that an audio dataset does not use: {shown}."
        )
    return len(rows), stats, warnings


def load_audio(m: Member, limits: UploadLimits) -> tuple[np.ndarray, int]:
    """The clip fully decoded as float32 (frames, channels), and its sample rate."""
    try:
        info = sf.info(str(m.path))
    except Exception as exc:  # noqa: BLE001 - libsndfile reports damage as several error types
        raise Invalid(
            f"{m.label} could not be read as audio ({_reason(exc, m)}). Export it again as WAV or FLAC.",
            code="bad_audio",
        ) from exc
    if info.samplerate <= 0 or info.frames <= 0:
        raise Invalid(f"{m.label} holds no audio samples.", code="bad_audio")
    seconds = info.frames / info.samplerate
    if seconds > limits.max_audio_seconds:
        raise TooLarge(
            f"{m.label} is {seconds:,.1f} s long; the limit is {limits.max_audio_seconds:g} s per clip. "
            "Cut it into shorter clips (one sentence each is ideal for speech).",
            code="audio_too_long",
        )
    try:
        data, rate = sf.read(str(m.path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001
        raise Invalid(
            f"{m.label} could not be decoded ({_reason(exc, m)}). Export it again as WAV or FLAC.",
            code="bad_audio",
        ) from exc
    if data.shape[0] == 0:
        raise Invalid(f"{m.label} holds no audio samples.", code="bad_audio")
    # libsndfile quietly reads what is there of a cut-off clip; the header says what should be.
    try:
        declared = wav_declared_frames(m.path) if m.sniffed == "wav" else info.frames
    except struct.error as exc:
        raise Invalid(f"{m.label} is damaged: its header is cut off. Export it again.", code="bad_audio") from exc
    except ValueError as exc:
        raise Invalid(f"{m.label} is damaged: {exc}. Export it again as WAV or FLAC.", code="bad_audio") from exc
    if declared is not None and declared != data.shape[0]:
        raise Invalid(
            f"{m.label} is damaged: its header promises {declared:,} frames but it holds {data.shape[0]:,} "
            "(the file is cut off or its header is wrong). Export it again as WAV or FLAC.",
            code="bad_audio",
        )
    if not np.isfinite(data).all():
        raise Invalid(
            f"{m.label} contains invalid samples (NaN or infinity). Export it again.", code="bad_audio"
        )
    return data, int(rate)


def wav_declared_frames(path: Path) -> int | None:
    """The frames a RIFF/RIFX/RF64 WAV's header declares, after checking that every chunk it
    lists fits in the file (ValueError says which does not). None for compressed encodings,
    whose frame count the data size does not give."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        form = head[:4]
        order = ">" if form == b"RIFX" else "<"
        (riff_size,) = struct.unpack(order + "I", head[4:8])
        if form != b"RF64" and riff_size + 8 > size:
            raise ValueError(f"its header says {riff_size + 8:,} bytes but the file has {size:,}")
        end = size if form == b"RF64" else riff_size + 8  # bytes after the RIFF form are ignored
        pos, data_size, encoding, block_align, data64 = 12, None, None, 0, None
        while pos + 8 <= end:
            fh.seek(pos)
            chunk_id = fh.read(4)
            (length,) = struct.unpack(order + "I", fh.read(4))
            if chunk_id == b"ds64":  # RF64: the real sizes of the form and the data chunk
                data64 = struct.unpack(order + "QQ", fh.read(16))[1]
            elif chunk_id == b"fmt ":
                fmt = fh.read(min(length, 40))
                encoding = struct.unpack(order + "H", fmt[:2])[0]
                block_align = struct.unpack(order + "H", fmt[12:14])[0]  # bytes per frame, for PCM
                if encoding == _WAVE_EXTENSIBLE and len(fmt) >= 26:
                    encoding = struct.unpack(order + "H", fmt[24:26])[0]  # the sub-format's tag
            elif chunk_id == b"data":
                length = data64 if form == b"RF64" and length == 0xFFFFFFFF and data64 else length
                data_size = length
            if pos + 8 + length > end:
                name = chunk_id.decode("latin-1").strip() or "?"
                raise ValueError(f"its '{name}' chunk claims {length:,} bytes, past the end of the file")
            pos += 8 + length + (length & 1)  # chunks are padded to an even size
    if data_size is None or not block_align:
        raise ValueError("its header has no 'fmt' or no 'data' chunk")
    return data_size // block_align if encoding in _PCM_ENCODINGS else None


def _read_metadata(meta: Member, clips: dict[tuple[str, str], Member], limits: UploadLimits) -> list[_Entry]:
    entries: list[_Entry] = []
    seen: set[tuple[str, str]] = set()
    first = True
    for number, line in enumerate(read_utf8(meta).split("\n"), 1):
        if not line.strip():
            continue
        is_first, first = first, False
        where = f"{meta.label} line {number}"
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 2:
            raise Invalid(
                f"{where} has no '|'. Each line is file_name|transcript, e.g. 'clip1.wav|Hello there.'",
                code="missing_column",
            )
        if is_first and fields[0].lower() in _HEADER_NAMES and _find(meta, fields[0], clips) is None:
            continue  # a header line
        member = _find(meta, fields[0], clips)
        if member is None:
            raise Invalid(
                f"{where} refers to '{fields[0][:200]}', which is not an audio file in the upload. "
                "Fix the name or add the clip.",
                code="missing_file",
            )
        key = (member.group, member.name)
        if key in seen:
            raise Invalid(
                f"{where} lists '{fields[0][:200]}' a second time. Keep one line per clip.",
                code="duplicate_file",
            )
        seen.add(key)
        # LJSpeech: id|raw transcript|normalised transcript — the normalised one reads best aloud.
        text = fields[2] if len(fields) >= 3 and fields[2] else fields[1]
        if len(text) > limits.max_text_chars:
            raise TooLarge(
                f"The transcript on {where} has {len(text):,} characters; the limit is "
                f"{limits.max_text_chars:,}.",
                code="text_too_long",
            )
        entries.append(_Entry(member=member, text=text, where=where))
    return entries


def _find(meta: Member, file_name: str, clips: dict[tuple[str, str], Member]) -> Member | None:
    """The clip a metadata line means: relative to the metadata file, with or without extension,
    directly or in a wavs/ folder (LJSpeech)."""
    for folder in (meta.dir, posixpath.join(meta.dir, "wavs")):
        for suffix in ("", ".wav", ".flac"):
            name = posixpath.normpath(posixpath.join(folder, file_name + suffix))
            found = clips.get((meta.group, name))
            if found is not None:
                return found
    return None


def _reason(exc: Exception, m: Member) -> str:
    """libsndfile's first line, without our temp file's path."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = text.replace(f"Error opening {str(m.path)!r}: ", "").replace(str(m.path), m.label)
    return text[:200]


def _s(n: int) -> str:
    return "" if n == 1 else "s"
