"""The `speech-finetune` trainer in-process on a tiny random voice: what it reads, what it writes (events
with spoken samples, checkpoints, a voice folder that transformers and the Speech engine load), and
the datasets it refuses. The learning itself is measured on the starter voice in
tests/api/test_speech_finetune_job.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engines.speech.griffin_lim import mel_to_audio
from engines.speech.train import SpeechFinetuneConfig, check_dataset, run
from engines.speech.voice import is_voice_folder, new_voice, voice_names
from engines.starter.build_speech import story_sentences, write_spoken_dataset
from engines.training import JobConfig, RunDir, write_json_atomic


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    root = tmp_path_factory.mktemp("voice")
    sentences = story_sentences(12, 3, set())
    write_spoken_dataset(root / "data", sentences, "en-us", lambda _msg: None)
    return root, sentences


def test_a_tiny_voice_trains_and_its_folder_speaks(spoken, tmp_path):
    import torch
    from transformers import SpeechT5ForTextToSpeech

    from engines.speech import SpeechEngine, SpeechRequest

    root, sentences = spoken
    init = new_voice(tmp_path / "init", sentences, size="tiny", seed=0)
    assert is_voice_folder(init) and voice_names(init) == ["default"]
    params = {"max_steps": 4, "batch_size": 4, "save_every": 2, "log_every": 1, "held_out": 2}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    job = JobConfig(job_id="j", kind="speech-finetune", params=params, base_model="init", base_model_path=str(init),
                    dataset_path=str(root / "data"), output_dir=str(tmp_path / "voice"), models_root=str(tmp_path),
                    device="cpu", offline=True)  # fmt: skip
    write_json_atomic(run_dir / "config.json", job.to_dict())
    result = run(SpeechFinetuneConfig(**params), RunDir(run_dir))

    m = result["metrics"]
    assert m["train_clips"] == 10 and m["held_out_clips"] == 2
    assert m["eval_loss_before"] > 0 and m["eval_loss_after"] > 0 and m["pitch_hz_target"] > 50
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events] == [1, 2, 3, 4]
    assert events[0]["samples"][0] == "samples/step-0-0.wav" and events[0]["eval_loss_before"] == m["eval_loss_before"]
    assert events[1]["samples"] == ["samples/step-2-0.wav", "samples/step-2-1.wav"]
    assert len(events[1]["sample_texts"]) == 2 and "eval_loss" in events[3]
    assert (run_dir / "samples" / "step-4-1.wav").stat().st_size > 44

    voice = tmp_path / "voice"
    assert result["artifact"]["type"] == "speech_model" and is_voice_folder(voice)
    assert not (voice / "checkpoints").exists() and (voice / "README.md").is_file()
    SpeechT5ForTextToSpeech.from_pretrained(voice)  # the plain library loads it as it is
    engine = SpeechEngine(voice).load()
    assert engine.family == "speecht5" and engine.voices() == ["default"] and engine.sample_rate == 16_000
    with torch.random.fork_rng():
        out = engine.synthesize(SpeechRequest(text="Hello there.", seed=0))
    assert out.audio.dtype == np.float32 and out.duration_s > 0


def test_what_a_voice_cannot_learn_from_is_refused(spoken, tmp_path):
    root, _ = spoken
    check_dataset(root / "data")  # 12 clips of speech
    with pytest.raises(ValueError, match="needs an audio dataset"):
        check_dataset(None)
    text = tmp_path / "text"
    text.mkdir()
    (text / "manifest.json").write_text(json.dumps({"kind": "text", "name": "notes"}))
    with pytest.raises(ValueError, match="'text' is a text dataset|is a text dataset"):
        check_dataset(text)
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    (quiet / "manifest.json").write_text(json.dumps({"kind": "audio"}))
    rows = [{"file_name": "a.wav", "text": "Hi.", "duration_s": 1.0, "issues": ["no speech found (silero-vad): "
             "training leaves it out"]}, {"file_name": "b.wav", "text": "", "duration_s": 1.0, "issues": []}]
    (quiet / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="0 usable clip.*1 no speech; 1 no transcript"):
        check_dataset(quiet)


def test_griffin_lim_hears_the_mel_frames_it_is_given():
    from transformers import SpeechT5FeatureExtractor

    fe = SpeechT5FeatureExtractor()
    t = np.arange(16_000) / 16_000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    mel = fe(audio_target=tone, sampling_rate=16_000)["input_values"][0]
    wave = mel_to_audio(mel, fe)
    assert abs(len(wave) - len(tone)) <= fe.sample_stride
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * 16_000 / len(wave) - 220) < 10  # the tone comes back at its pitch
    assert len(mel_to_audio(mel[:2], fe)) > 0  # a voice that stopped at once is a short silence, not an error
