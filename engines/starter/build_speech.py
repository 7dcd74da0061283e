"""`python -m engines.starter build --kind speech`: the starter voice, a small SpeechT5 trained from
random weights by the studio's own `speech-finetune` job on speech the project synthesises itself.

1. Sentences from the story grammar (engines/starter/corpus.py), none of them an intelligibility
   test sentence, spoken by espeak-ng (the `espeakng-loader` wheel: no system package) and prepared
   exactly as an uploaded clip is (engines/speech/prep.py: speech trimmed by silero-vad, loudness
   normalised), into a folder laid out like a studio audio dataset.
2. A new voice with random weights (engines/speech/voice.py `new_voice`, its character tokenizer
   trained on the sentences), trained by `python -m engines.speech.train` as the studio runs it.
3. Weights stored in fp16; intelligibility measured offline (engines/speech/intelligibility.py:
   closed-set identification of 10 sentences it never trained on, open WER) and the median pitch;
   the card (`card.json`, written last) and README.md.

What it sounds like: espeak-ng's voice, learnt — robotic, heard through Griffin-Lim (no neural
vocoder offline). It exists to be fine-tuned: a `speech-finetune` job on someone's recordings starts
from it. The classic espeak-ng engine stays the Speech tab's default voice.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engines.starter import shipped
from engines.training.run_dir import JobConfig, write_json_atomic

SPEECH_RECIPE: dict[str, Any] = {
    "seed": 0,
    "sentences": 2500,  # 3–10 words each, from the story grammar
    "espeak_voice": "en-us",
    "size": "small",  # engines/speech/voice.py SIZES
    "trainer": {
        "max_steps": 5000,
        "batch_size": 16,
        "learning_rate": 5e-4,
        "warmup_steps": 300,
        "lr_scheduler": "cosine",
        "held_out": 32,
        "save_every": 500,
        "log_every": 25,
        "name": "starter voice",
    },
}


def story_sentences(n: int, seed: int, exclude: set[str]) -> list[str]:
    """`n` distinct sentences of 3–10 words from the story grammar, none of them in `exclude`."""
    from engines.starter.corpus import iter_paragraphs

    found: dict[str, None] = {}
    for paragraph in iter_paragraphs(100_000, seed):
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph.replace('"', "")):
            words = sentence.split()
            key = re.sub(r"[^a-z ]", "", sentence.lower()).strip()
            if 3 <= len(words) <= 10 and key not in exclude:
                found[sentence] = None
        if len(found) >= n:
            break
    return list(found)[:n]


def write_spoken_dataset(folder: Path, sentences: list[str], voice: str, log: Callable[[str], None]) -> int:
    """espeak-ng speaks each sentence; each clip is prepared as an upload would be; a studio audio dataset."""
    import soundfile as sf

    from engines.speech import espeak
    from engines.speech.prep import prepare

    folder.mkdir(parents=True, exist_ok=True)
    engine = espeak.Espeak()
    rows = []
    for text in sentences:
        wave = engine.say(text, voice=voice, speed=1.0)
        for part in prepare(wave, engine.sample_rate, text):
            name = f"{len(rows):06d}.wav"
            sf.write(str(folder / name), part.audio, part.rate, subtype="PCM_16")
            rows.append({"file_name": name, "text": part.text, "duration_s": part.duration_s,
                         "sample_rate": part.rate, "issues": part.issues})
    with open(folder / "metadata.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    write_json_atomic(folder / "manifest.json", {"kind": "audio", "name": "espeak-ng sentences"})
    log(f"dataset: {len(rows)} clips, {sum(r['duration_s'] for r in rows) / 60:.1f} minutes of speech")
    return len(rows)


def build_speech(out_root: Path = shipped.ASSETS, *, work: Path | None = None, steps: int | None = None,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the starter voice and store it in `out_root/speecht5-espeak`; return its card."""
    import os

    import torch
    from transformers import SpeechT5ForTextToSpeech

    from engines.speech.intelligibility import SENTENCES
    from engines.speech.voice import new_voice
    from engines.starter.build import _finish, _run_trainer, _set_config_dtype, _work_dir

    recipe = json.loads(json.dumps(SPEECH_RECIPE))
    if steps:
        recipe["trainer"]["max_steps"] = steps
    work = _work_dir(work)
    t_start = time.perf_counter()

    # 1. The spoken dataset
    sentences = story_sentences(recipe["sentences"], recipe["seed"], set(SENTENCES))
    data = work / "datasets" / "espeak"
    clips = write_spoken_dataset(data, sentences, recipe["espeak_voice"], log)

    # 2. A voice with random weights, then the studio's trainer
    init = new_voice(work / "models" / "init" / "speecht5-espeak", sentences, size=recipe["size"], seed=recipe["seed"])
    n_params = sum(p.numel() for p in SpeechT5ForTextToSpeech.from_pretrained(init).parameters())
    log(f"model: SpeechT5 '{recipe['size']}', {n_params:,} weights")
    run_dir = work / "runs" / "starter-speech"
    run_dir.mkdir(parents=True, exist_ok=True)
    job = JobConfig(job_id="starter-speech", kind="speech-finetune", params=recipe["trainer"],
                    base_model="init/speecht5-espeak", base_model_path=str(init), dataset_id="espeak",
                    dataset_path=str(data), output_dir=str(work / "models" / "trained" / "speecht5-espeak"),
                    models_root=str(work / "models"), device="cpu", offline=True)  # fmt: skip
    write_json_atomic(run_dir / "config.json", job.to_dict())
    t_train = time.perf_counter()
    result = _run_trainer("engines.speech.train", run_dir, log)
    train_s = time.perf_counter() - t_train
    artifact = Path(result["artifact"]["path"])

    # 3. fp16 weights (read back as fp32), the measures, the card
    dest = shipped.shipped_path(shipped.TRAINED_SPEECH_VOICE, Path(out_root))
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(artifact, tmp, ignore=shutil.ignore_patterns("model.safetensors", "training.json", "README.md"))
    SpeechT5ForTextToSpeech.from_pretrained(artifact, dtype=torch.float32).to(torch.float16).save_pretrained(
        tmp, safe_serialization=True)
    _set_config_dtype(tmp / "config.json", "float32")
    measures = measure_voice(tmp)
    log(f"measured: {measures}")
    metrics = result["metrics"]
    card = {
        "id": shipped.TRAINED_SPEECH_VOICE,
        "kind": "speech",
        "architecture": f"SpeechT5ForTextToSpeech '{recipe['size']}' (engines/speech/voice.py), character "
                        "tokenizer, 80 log-mel bins at 16 kHz, Griffin-Lim vocoder",
        "parameters": n_params,
        "trained_on": f"{clips} clips: {len(sentences)} sentences from the story grammar spoken by espeak-ng "
                      f"('{recipe['espeak_voice']}'), prepared as uploads are",
        "recipe": recipe,
        "train_time_s": round(train_s, 1),
        "build_time_s": round(time.perf_counter() - t_start, 1),
        "machine": f"{os.cpu_count()} CPU cores",
        "train_metrics": {k: metrics.get(k) for k in ("eval_loss_before", "eval_loss_after", "pitch_hz_after")},
        "measures": measures,
        "weights": "float16 (loaded as float32)",
        "rebuild": "python -m engines.starter build --kind speech",
    }
    _finish(tmp, dest, card, _readme(card))
    return card


def measure_voice(folder: Path) -> dict[str, Any]:
    """Closed-set identification and open WER (pocketsphinx), and the median pitch, over the 10 test sentences."""
    from engines.speech import intelligibility
    from engines.speech.voice import median_pitch_hz

    spoken: list[Any] = []

    def speak(text: str):
        audio, rate = base(text)
        spoken.append(audio)
        return audio, rate

    base = intelligibility.engine_speaker(str(folder))
    t0 = time.perf_counter()
    result = intelligibility.measure(speak)
    pitches = [p for p in (median_pitch_hz(a) for a in spoken) if p]
    return {"closed_set_identified": result.identified, "closed_set_total": result.total,
            "closed_set_rejected": result.rejected, "open_wer": result.wer, "heard": result.heard,
            "median_pitch_hz": round(sorted(pitches)[len(pitches) // 2], 1) if pitches else None,
            "measure_time_s": round(time.perf_counter() - t0, 1)}


def _readme(card: dict[str, Any]) -> str:
    m, t = card["measures"], card["recipe"]["trainer"]
    return (
        f"---\nlibrary_name: transformers\ntags: [aigc-studio, starter, speecht5, text-to-speech]\n---\n\n"
        f"# {card['id']}\n\nThe studio's starter voice: {card['architecture']}; {card['parameters']:,} weights.\n\n"
        f"**Trained on** {card['trained_on']}, by the studio's `speech-finetune` job from random weights: "
        f"{t['max_steps']} steps of {t['batch_size']} clips, learning rate {t['learning_rate']} ({t['lr_scheduler']}); "
        f"{card['train_time_s'] / 60:.0f} minutes on {card['machine']}.\n\n"
        f"**Measured** (engines/speech/intelligibility.py, pocketsphinx, offline): it says {m['closed_set_identified']} "
        f"of {m['closed_set_total']} sentences it never trained on well enough to be told apart (closed set; "
        f"espeak-ng itself: 7 of 10, white noise: 0); open-vocabulary WER {m['open_wer']}; median pitch "
        f"{m['median_pitch_hz']} Hz. What the closed-set decoder made of the 10 sentences: "
        f"{', '.join(repr(h) for h in m['heard'] if h) or 'nothing'} — {_follows(m['heard'])}.\n\n"
        "It is espeak-ng's voice, learnt: robotic, and heard through Griffin-Lim. It is not the default voice "
        "(espeak-ng is): it exists to be fine-tuned — a `speech-finetune` job on someone's recordings starts "
        "from it. "
        f"Rebuild: `{card['rebuild']}`.\n"
    )


def _follows(heard: list[str]) -> str:
    """How many of the closed-set answers are the start of the sentence said (cut short, not misheard)."""
    from engines.speech.intelligibility import SENTENCES

    begun = sum(bool(h) and said.startswith(h) for h, said in zip(heard, SENTENCES, strict=False))
    return (f"{begun} of {len(heard)} are the right first words, cut short: the voice drifts as a sentence goes on"
            if begun else "none is the start of the sentence said")
