"""Kind `speech-finetune`: teach a SpeechT5 voice a new speaker from an uploaded audio dataset.

    accelerate launch -m engines.speech.train --run-dir runs/<job-id>

Why SpeechT5: see engines/speech/voice.py. The base is a voice folder (the starter voice, a voice
trained here before, or a random one: `engines/starter/build_speech.py` trains the starter from
random weights with this very job). Every weight is trained: a small voice has no room for an
adapter to hide a speaker in.

- Data: the dataset's usable clips (engines/speech/train_data.py); a seeded few are held out.
- Loss: the model's own — L1 on the log-mel frames (before and after the postnet), the stop-token
  BCE and the guided-attention loss. `eval_loss_before` / `eval_loss_after` are that loss on the
  held-out clips, teacher-forced, with the prenet's always-on dropout seeded (the same every time).
- Progress you can hear: every `save_every` steps (and at step 0) the held-out sentences are spoken
  by the voice as it is (`samples/step-<N>-<k>.wav`), with the event that names them.
- Pitch: the median pitch (Praat, through parselmouth) of the held-out sentences spoken by the voice,
  before and after, and of the held-out recordings: `pitch_hz_before`, `pitch_hz_after`,
  `pitch_hz_target` say whether the voice moved toward the speaker.
- The artifact (type `speech_model`) is a voice folder transformers loads as it is, with a README.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engines.training import (
    RunDir,
    TrainingLoop,
    artifact_dir,
    atomic_folder,
    current_rng_state,
    is_main_process,
    keeps_torch_threads,
    load_latest,
    restore_rng,
    save_checkpoint,
    trainer_main,
    write_json_atomic,
)

SAMPLES_SPOKEN = 2  # held-out sentences spoken at every save point
PITCH_SENTENCES = 4  # held-out sentences the pitch is measured on
ESTIMATE_AFTER = 10  # steps timed before train.log says how long the rest will take


@dataclass
class SpeechFinetuneConfig:
    """Fine-tune a SpeechT5 voice on an audio dataset (clips + transcripts); makes a voice for the Speech tab."""

    max_steps: int = 240  # optimizer steps in total
    batch_size: int = 8  # clips per step
    learning_rate: float = 3e-4  # AdamW learning rate after the warm-up (1e-3 suits a voice from random weights)
    warmup_steps: int = 20  # steps of linear learning-rate warm-up
    lr_scheduler: str = "constant"  # after the warm-up: "constant", "linear" or "cosine" decay
    weight_decay: float = 0.01  # AdamW weight decay
    max_grad_norm: float = 1.0  # gradients are clipped to this norm (0: not clipped)
    held_out: int = 4  # clips kept out of training for eval loss, pitch and the spoken samples (≤ a fifth)
    seed: int = 0  # seeds the split, every batch and the dropout
    save_every: int = 80  # steps between checkpoints and spoken samples; a final one is always saved
    log_every: int = 5  # steps between events (the loss is averaged over the steps in between)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    name: str = ""  # display name of the new voice (empty: "<dataset name> voice")

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "held_out", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"'{name}' must be at least 1.")
        if self.batch_size > 256:
            raise ValueError("'batch_size' must be at most 256.")
        if not 0 < self.learning_rate < 1:
            raise ValueError("'learning_rate' must be between 0 and 1.")
        if self.warmup_steps < 0 or self.save_every < 0 or self.max_grad_norm < 0 or self.weight_decay < 0:
            raise ValueError("'warmup_steps', 'save_every', 'max_grad_norm' and 'weight_decay' must not be negative.")
        if self.lr_scheduler not in ("constant", "linear", "cosine"):
            raise ValueError("'lr_scheduler' must be 'constant', 'linear' or 'cosine'.")
        if len(self.name) > 200:
            raise ValueError("'name' must be at most 200 characters.")


CONFIG_CLASS = SpeechFinetuneConfig


def check_dataset(dataset_path: Path | None) -> None:
    """The studio's check before a job starts (ValueError → 422): an audio dataset with usable clips."""
    from engines.speech.train_data import check_dataset as check

    check(Path(dataset_path) if dataset_path else None)


def resolve_base(job: Any) -> tuple[str, Path]:
    """(the base voice's id, its folder): a trained voice the studio resolved, or a listed speech model."""
    from engines.registry import ModelRegistry, UnknownModel
    from engines.speech.voice import is_voice_folder

    if job.base_model_path:
        folder = Path(job.base_model_path).resolve()
        base_id = job.base_model or folder.name
    else:
        from engines.starter.shipped import TRAINED_SPEECH_VOICE

        registry = ModelRegistry(job.models_dir(), offline=job.offline)
        base_id = job.base_model or TRAINED_SPEECH_VOICE
        try:
            folder = Path(registry.location(registry.resolve(base_id, "speech")))
        except UnknownModel as exc:
            raise ValueError(str(exc)) from exc
    if not is_voice_folder(folder):
        raise ValueError(f"'{base_id}' is not a SpeechT5 voice this studio can train (a voice folder with its own "
                         "vocoder and voices). Pick the starter voice or a voice trained here.")
    return base_id, folder


# -- the run -------------------------------------------------------------------------------------
@keeps_torch_threads
def run(config: SpeechFinetuneConfig, run_dir: RunDir) -> dict[str, Any]:
    import torch
    from transformers import SpeechT5ForTextToSpeech, get_scheduler

    from engines.device import idle_cpu_threads, resolve_device
    from engines.speech import train_data
    from engines.speech.voice import load_processor, speaker_vector

    # 1. Set up: device, the base voice, the data (usable clips → ids + mel frames), the split.
    job = run_dir.read_job()
    main = is_main_process()
    device = resolve_device(job.device if job.device in ("cpu", "cuda", "mps") else "auto")
    if device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(idle_cpu_threads())
    base_id, base_dir = resolve_base(job)
    dataset = Path(job.dataset_path) if job.dataset_path else None
    clips = train_data.check_dataset(dataset)
    assert dataset is not None
    train_clips, held_clips = train_data.split(clips, config.held_out, config.seed)
    processor = load_processor(base_dir)
    t0 = time.perf_counter()
    train_set = train_data.load_examples(dataset, train_clips, processor)
    held_set = train_data.load_examples(dataset, held_clips, processor)
    torch.manual_seed(config.seed)
    model = SpeechT5ForTextToSpeech.from_pretrained(str(base_dir)).to(device)
    speaker = torch.from_numpy(speaker_vector(base_dir)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_scheduler("constant_with_warmup" if config.lr_scheduler == "constant" else config.lr_scheduler,
                              optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=config.max_steps)
    reduction, pad_id = model.config.reduction_factor, processor.tokenizer.pad_token_id
    where = f"cpu, {torch.get_num_threads()} thread(s)" if device == "cpu" else device
    print(f"speech-finetune: {len(train_set)} clips to learn from, {len(held_set)} held out "
          f"({time.perf_counter() - t0:.1f} s to prepare); base {base_id}; {config.max_steps} steps on {where}",
          flush=True)  # fmt: skip

    def batch(examples: list[Any]) -> dict[str, Any]:
        return {k: v.to(device) for k, v in train_data.collate(examples, speaker, reduction, pad_id).items()}

    def held_loss() -> float:
        model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[] if device == "cpu" else None):
                torch.manual_seed(config.seed)
                losses = [model(**batch(held_set[i: i + 8])).loss.item() * len(held_set[i: i + 8])
                          for i in range(0, len(held_set), 8)]
            return round(sum(losses) / len(held_set), 5)
        finally:
            model.train()

    def spoken(texts: list[str]) -> list[Any]:
        from engines.speech.voice import synthesize

        model.eval()
        try:
            with torch.inference_mode(), torch.random.fork_rng(devices=[] if device == "cpu" else None):
                torch.manual_seed(config.seed)
                return [synthesize(model, processor, t, speaker) for t in texts]
        finally:
            model.train()

    # 2. Resume: weights, optimizer, schedule, RNG and what was measured before training.
    before: dict[str, Any] = {}
    elapsed_before = 0.0
    # read on the CPU: the RNG state must stay a CPU tensor; the weights and optimizer state move to the model
    ckpt = load_latest(run_dir) if job.resume else None
    if ckpt is not None:
        model.load_state_dict(ckpt.tensors)  # the whole model: a checkpoint of another voice is refused
        optimizer.load_state_dict(ckpt.extra_state["optimizer"])
        scheduler.load_state_dict(ckpt.extra_state["scheduler"])
        restore_rng(ckpt.extra_state)
        before = dict(ckpt.meta.get("before") or {})
        elapsed_before = float(ckpt.meta.get("train_time_s") or 0.0)
        print(f"speech-finetune: resumed from step {ckpt.step} ({ckpt.path.name})", flush=True)

    from engines.speech.voice import median_pitch_hz

    pitch_texts = [e.text for e in held_set[:PITCH_SENTENCES]]
    sample_texts = pitch_texts[:SAMPLES_SPOKEN]

    def write_samples(step: int, waves: list[Any]) -> list[str]:
        import soundfile as sf

        run_dir.samples_dir.mkdir(parents=True, exist_ok=True)
        rels = []
        for k, wave in enumerate(waves[:SAMPLES_SPOKEN]):
            rel = f"samples/step-{step}-{k}.wav"
            sf.write(str(run_dir.path / rel), wave, 16_000, subtype="PCM_16")
            rels.append(rel)
        return rels

    first_extra: dict[str, Any] = {}
    if not before:
        waves = spoken(pitch_texts)
        before = {"eval_loss_before": held_loss(), "pitch_hz_before": _median(median_pitch_hz(w) for w in waves),
                  "pitch_hz_target": _median(median_pitch_hz(e.audio) for e in held_set[:PITCH_SENTENCES])}
        first_extra = {"eval_loss": before["eval_loss_before"], **before}
        if main:
            first_extra["samples"] = write_samples(0, waves)
            first_extra["sample_texts"] = sample_texts
        print(f"speech-finetune: before training, held-out loss {before['eval_loss_before']}, pitch "
              f"{before['pitch_hz_before']} Hz (the speaker's: {before['pitch_hz_target']} Hz)", flush=True)

    seg_t0 = time.perf_counter()

    def checkpoint(step: int) -> None:
        if not main:
            return
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                 **current_rng_state()}  # fmt: skip
        meta = {"kind": "speech-finetune", "base_model": base_id, "config": asdict(config), "before": before,
                "train_time_s": round(elapsed_before + time.perf_counter() - seg_t0, 3)}  # fmt: skip
        path = save_checkpoint(run_dir, step, model.state_dict(), state, meta=meta, keep_last=config.keep_checkpoints)
        print(f"speech-finetune: saved {path.name}", flush=True)

    # 3. Train: one event every log_every steps; eval loss and spoken samples at every save point.
    loop = TrainingLoop(run_dir, name="speech-finetune", start_step=ckpt.step if ckpt else 0,
                        total_steps=config.max_steps, save_every=config.save_every, checkpoint=checkpoint,
                        resume=job.resume, main=main)  # fmt: skip
    model.train()
    latest: dict[str, Any] = {}
    total, counted, window_t0 = 0.0, 0, time.perf_counter()
    with loop:
        for step in loop.steps():
            order = train_data.batch_order(len(train_set), config.batch_size, config.seed, step)
            loss = model(**batch([train_set[i] for i in order])).loss
            loss.backward()
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item()
            counted += 1
            saving = loop.save_point(step)
            fields: dict[str, Any] = {}
            if saving or step % config.log_every == 0 or step == loop.start_step + 1:
                now = time.perf_counter()
                fields = {"loss": round(total / counted, 5), "lr": scheduler.get_last_lr()[0],
                          "throughput": round(counted * len(order) / max(now - window_t0, 1e-9), 2),
                          "total_steps": config.max_steps}  # fmt: skip
                latest["loss"] = fields["loss"]
                total, counted, window_t0 = 0.0, 0, now
            if saving:
                loop.save(step)
                fields["eval_loss"] = latest["eval_loss"] = held_loss()
                if main:
                    fields["samples"] = write_samples(step, spoken(sample_texts))
                    fields["sample_texts"] = sample_texts
            if fields:
                if first_extra:
                    fields = {**first_extra, **fields,
                              "samples": first_extra.get("samples", []) + fields.get("samples", [])}
                    first_extra = {}
                loop.log(step, **fields)
            if step == loop.start_step + ESTIMATE_AFTER and step < config.max_steps:
                pace = (time.perf_counter() - seg_t0) / ESTIMATE_AFTER
                print(f"speech-finetune: {pace:.2f} s/step here: about {(config.max_steps - step) * pace / 60:.0f} "
                      "min left (plus the spoken samples)", flush=True)  # fmt: skip
            if loop.stop_requested(step):
                return {"status": "cancelled", "metrics": {**before, **latest}}

    # 4. After: the measures, then the voice folder (weights, tokenizer, features, speaker, vocoder, card).
    after_waves = spoken(pitch_texts)
    metrics = {**before, "loss": latest.get("loss"), "eval_loss_after": latest.get("eval_loss") or held_loss(),
               "pitch_hz_after": _median(median_pitch_hz(w) for w in after_waves),
               "train_clips": len(train_set), "held_out_clips": len(held_set),
               "train_time_s": round(elapsed_before + time.perf_counter() - seg_t0, 2)}  # fmt: skip
    if metrics.get("eval_loss_before"):
        metrics["eval_loss_ratio"] = round(metrics["eval_loss_after"] / metrics["eval_loss_before"], 4)
    from engines.training import dataset_name as name_of

    data_name = name_of(dataset)
    name = config.name or f"{data_name} voice"
    out_dir = artifact_dir(job, run_dir)
    if main:
        info = {"name": name, "base_model": base_id, "dataset": data_name, "dataset_id": job.dataset_id,
                "job_id": job.job_id, "steps": config.max_steps, "metrics": metrics, "training": asdict(config)}
        with atomic_folder(out_dir) as tmp:
            write_voice(tmp, model, processor, base_dir, info)
    print(f"speech-finetune: done in {metrics['train_time_s']:.0f} s; held-out loss {metrics['eval_loss_before']} → "
          f"{metrics['eval_loss_after']}; pitch {metrics['pitch_hz_before']} → {metrics['pitch_hz_after']} Hz "
          f"(speaker {metrics['pitch_hz_target']} Hz)", flush=True)  # fmt: skip
    artifact = {"type": "speech_model", "path": str(out_dir), "base_model": base_id, "name": name}
    return {"metrics": metrics, "artifact": artifact}


def write_voice(out_dir: Path, model: Any, processor: Any, base_dir: Path, info: dict[str, Any]) -> None:
    """The voice folder (engines/speech/voice.py's layout) + `training.json` + a README model card."""
    from engines.speech.voice import VOCODER_FILE, VOICES_DIR

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    shutil.copytree(base_dir / VOICES_DIR, out_dir / VOICES_DIR, dirs_exist_ok=True)
    if (base_dir / "vocoder").is_dir():
        shutil.copytree(base_dir / "vocoder", out_dir / "vocoder", dirs_exist_ok=True)
    if (base_dir / VOCODER_FILE).is_file():
        shutil.copy2(base_dir / VOCODER_FILE, out_dir / VOCODER_FILE)
    write_json_atomic(out_dir / "training.json", info)
    m = info["metrics"]
    (out_dir / "README.md").write_text(
        f"# {info['name']}\n\nA SpeechT5 voice fine-tuned from `{info['base_model']}` on the audio dataset "
        f"'{info['dataset']}' ({m['train_clips']} clips, {info['steps']} steps).\n\n"
        f"- held-out loss: {m.get('eval_loss_before')} → {m.get('eval_loss_after')}\n"
        f"- median pitch of held-out sentences: {m.get('pitch_hz_before')} → {m.get('pitch_hz_after')} Hz "
        f"(the speaker's recordings: {m.get('pitch_hz_target')} Hz)\n\n"
        "Load it with `SpeechT5ForTextToSpeech.from_pretrained(folder)` and `SpeechT5Processor.from_pretrained(folder)`;"
        " the speaker vector is `voices/default.npy`; without a `vocoder/` folder its mel frames are turned into "
        "sound by Griffin-Lim.\n", encoding="utf-8")


def _median(values: Any) -> float | None:
    import statistics

    found = [v for v in values if v is not None]
    return round(statistics.median(found), 1) if found else None


if __name__ == "__main__":
    trainer_main(run, CONFIG_CLASS)
