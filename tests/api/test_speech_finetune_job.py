"""A `speech-finetune` job through HTTP: a "new speaker" (espeak-ng's fourth female variant, at more
than twice the starter voice's pitch and 0.85× its pace) recorded offline, uploaded as a dataset, learnt by the starter voice with the kind's
default parameters, SIGKILLed after its first checkpoint, resumed, completed, then heard through the
Speech API; and the data a voice cannot learn from, refused before any job starts."""

from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from engines.speech import espeak
from engines.starter.build_speech import story_sentences
from engines.starter.shipped import TRAINED_SPEECH_VOICE, is_shipped
from engines.training import latest_checkpoint
from studio.app import build_app
from studio.config import StudioConfig
from tests.conftest import cpu_share
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
# espeak-ng's fourth female variant, pitch 75 and 0.85× the pace: ~235 Hz against the starter voice's ~100 Hz
SPEAKER = {"voice": "en-us+f4", "pitch": 75, "speed": 0.85}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    assert is_shipped(TRAINED_SPEECH_VOICE), "the starter voice ships in assets/starter/speecht5-espeak"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", str(cpu_share()))  # the trainer has this process's cores: the test only polls it
        config = StudioConfig(data_dir=tmp_path_factory.mktemp("voice") / "data", offline=True, device="cpu",
                              job_grace_s=5)  # fmt: skip
        app = build_app(config, ui=False)
        with TestClient(app) as c:
            c.studio = app.state.studio
            yield c


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    sf.write(out, audio, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def upload(client, name: str, files: dict[str, bytes], kind: str = "audio"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
    return client.post("/api/v1/datasets", files=[("file", (f"{name}.zip", buf.getvalue()))],
                       data={"kind": kind, "name": name})  # fmt: skip


@pytest.fixture(scope="module")
def speaker_dataset(client) -> str:
    """40 short sentences said by the new speaker, as a .zip of WAVs with metadata.csv."""
    engine = espeak.Espeak()
    sentences = story_sentences(40, seed=12345, exclude=set())
    files = {f"clip{i:02d}.wav": wav_bytes(engine.say(s, **SPEAKER), engine.sample_rate)
             for i, s in enumerate(sentences)}
    files["metadata.csv"] = "\n".join(f"clip{i:02d}.wav|{s}" for i, s in enumerate(sentences)).encode()
    r = upload(client, "new speaker", files)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def finished(client, job_id: str):
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    return job["status"] not in ("queued", "running") and job


@pytest.fixture(scope="module")
def trained(client, speaker_dataset):
    """The kind's defaults; killed (the whole process group) after the first checkpoint, resumed, finished."""
    t0 = time.monotonic()
    r = client.post("/api/v1/jobs", json={"kind": "speech-finetune", "dataset_id": speaker_dataset})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    run_dir = client.studio.jobs.run_dir(job_id)
    wait_for(lambda: latest_checkpoint(run_dir), 300, "a first checkpoint")
    pid = client.studio.store.query_one("SELECT pid FROM jobs WHERE id = ?", (job_id,))["pid"]
    os.killpg(pid, signal.SIGKILL)
    interrupted = wait_for(lambda: finished(client, job_id), 30, "the job to stop")
    checkpoint_step, _ = latest_checkpoint(run_dir)
    r = client.post(f"/api/v1/jobs/{job_id}/resume")
    assert r.status_code == 200, r.text
    done = wait_for(lambda: finished(client, job_id), 600, "the resumed job to finish")
    events = [json.loads(line) for line in client.get(f"/api/v1/jobs/{job_id}/events").text.splitlines()]
    return {"job": done, "interrupted": interrupted, "checkpoint_step": checkpoint_step, "events": events,
            "wall_s": time.monotonic() - t0}


def test_a_voice_learns_the_new_speaker_and_survives_a_kill(client, trained):
    assert trained["interrupted"]["status"] == "interrupted", trained["interrupted"]
    job = trained["job"]
    assert job["status"] == "completed", job["error"]
    assert job["base_model"] is None or job["base_model"] == TRAINED_SPEECH_VOICE
    total = job["total_steps"]
    assert 0 < trained["checkpoint_step"] < total
    assert [e["step"] for e in trained["events"] if "loss" in e] == sorted({e["step"] for e in trained["events"]})
    m = job["metrics"]
    print("speech-finetune metrics:", json.dumps(m), f"wall {trained['wall_s']:.0f} s")
    assert m["eval_loss_after"] <= 0.7 * m["eval_loss_before"], m
    # the pitch moves at least halfway from the starter voice's toward the speaker's
    assert m["pitch_hz_target"] > m["pitch_hz_before"] + 40, m
    assert m["pitch_hz_after"] - m["pitch_hz_before"] >= 0.5 * (m["pitch_hz_target"] - m["pitch_hz_before"]), m
    # samples to listen to, from step 0 on, named with the sentences they say
    spoken = [e for e in trained["events"] if e.get("samples")]
    assert spoken[0]["step"] == 1 and spoken[0]["samples"][0].startswith("samples/step-0-")
    assert all(s.endswith(".wav") for e in spoken for s in e["samples"]) and spoken[-1]["sample_texts"]
    name = spoken[-1]["samples"][0].removeprefix("samples/")
    r = client.get(f"/api/v1/jobs/{job['id']}/samples/{name}")
    assert r.status_code == 200 and r.content[:4] == b"RIFF" and r.headers["content-type"] == "audio/wav"
    for bad in ("..%2Fconfig.json", "config.json", "step-1.txt"):
        assert client.get(f"/api/v1/jobs/{job['id']}/samples/{bad}").status_code == 404


def test_the_new_voice_speaks_in_the_speech_api(client, trained):
    voice = trained["job"]["artifact"]["id"]
    listed = {m["id"]: m for m in client.get("/api/v1/models").json()["speech"]}
    assert listed[voice]["source"] == "trained"
    r = client.post("/api/v1/speech/generate", json={"text": "She reads a book every night.", "model": voice,
                                                     "seed": 1})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    out = body["outputs"][0]
    assert body["model"] == voice and out["duration_s"] > 0.5
    audio, rate = sf.read(io.BytesIO(client.get(out["url"]).content))
    assert rate == out["sample_rate"] == 16_000 and np.abs(audio).max() > 0.05
    # rated like every output
    r = client.post("/api/v1/feedback", json={"output_id": out["id"], "rating": "up"})
    assert r.status_code in (200, 201), r.text


def test_data_a_voice_cannot_learn_from_is_422_before_any_job(client, speaker_dataset):
    before = client.get("/api/v1/jobs").json()
    # a text dataset
    r = upload(client, "notes", {"notes.txt": b"Plain words for a language model.\n" * 20}, kind="text")
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/jobs", json={"kind": "speech-finetune", "dataset_id": r.json()["id"]})
    assert r.status_code == 422 and "text dataset" in r.json()["error"]["message"], r.text
    # clips with no speech in them: nothing usable after preparation
    silence = wav_bytes(np.zeros(16_000, dtype=np.float32), 16_000)
    r = upload(client, "silence", {"a.wav": silence, "b.wav": silence, "metadata.csv": b"a.wav|Hello.\nb.wav|Hi."})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/jobs", json={"kind": "speech-finetune", "dataset_id": r.json()["id"]})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "0 usable clip" in message and "no speech" in message, message
    # clips in a format the studio does not read
    r = upload(client, "mp3s", {"a.mp3": b"ID3" + bytes(600), "metadata.csv": b"a.mp3|Hello there."})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_audio_format", r.text
    assert ".wav" in r.json()["error"]["message"]
    # an image model as the base
    r = client.post("/api/v1/jobs", json={"kind": "speech-finetune", "dataset_id": speaker_dataset,
                                          "base_model": "starter/sd-tiny"})  # fmt: skip
    assert r.status_code == 422, r.text
    assert client.get("/api/v1/jobs").json() == before
