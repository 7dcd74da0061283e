"""Audio datasets decode every clip in full at upload: a truncated clip, or one whose header
lies about its length, is refused (422 naming the file) and nothing is written."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from studio.config import StudioConfig
from studio.services.datasets import DatasetService, IncomingFile
from studio.store import Store
from tests.services.test_datasets import rejected, wav, zip_of


@pytest.fixture
def svc(tmp_path):
    config = StudioConfig(data_dir=tmp_path / "data")
    store = Store(config.data_dir / "studio.db")
    yield DatasetService(config, store)
    store.close()


@pytest.fixture
def put(tmp_path):
    """Bytes into an upload temp file outside the data dir → IncomingFile."""
    (tmp_path / "uploads").mkdir()
    counter = iter(range(1000))

    def put(name: str, content: bytes) -> IncomingFile:
        path = tmp_path / "uploads" / f"upload-{next(counter)}"
        path.write_bytes(content)
        return IncomingFile(name=name, path=path)

    return put


def data_chunk(clip: bytes) -> int:
    """Offset of the 'data' chunk id in a plain WAV."""
    return clip.index(b"data")


def with_data_size(clip: bytes, size: int) -> bytes:
    at = data_chunk(clip)
    return clip[: at + 4] + struct.pack("<I", size) + clip[at + 8 :]


def declared_data_size(clip: bytes) -> int:
    at = data_chunk(clip)
    return struct.unpack("<I", clip[at + 4 : at + 8])[0]


def upload_with(clip: bytes, put):
    return [put("voice.zip", zip_of({"a.wav": wav(), "b.wav": clip, "metadata.csv": "a.wav|hello\nb.wav|world\n"}))]


def test_a_truncated_wav_is_422_naming_the_clip(svc, put):
    clip = wav(1.0)
    exc = rejected(svc, upload_with(clip[: len(clip) // 2], put), "audio")
    assert exc.status == 422 and exc.code == "bad_audio"
    assert "voice.zip/b.wav" in exc.message and "upload-" not in exc.message


def test_a_wav_whose_header_claims_more_audio_than_it_holds_is_422(svc, put):
    clip = wav(1.0)
    exc = rejected(svc, upload_with(with_data_size(clip, 2 * declared_data_size(clip)), put), "audio")
    assert exc.status == 422 and exc.code == "bad_audio" and "voice.zip/b.wav" in exc.message


def test_a_wav_whose_header_claims_less_audio_than_follows_is_422(svc, put):
    clip = wav(1.0)
    exc = rejected(svc, upload_with(with_data_size(clip, declared_data_size(clip) // 2), put), "audio")
    assert exc.status == 422 and exc.code == "bad_audio" and "voice.zip/b.wav" in exc.message


def test_a_truncated_flac_is_422(svc, put):
    clip = wav(1.0, fmt="FLAC")
    upload = zip_of({"a.wav": wav(), "b.flac": clip[: len(clip) * 2 // 3], "metadata.csv": "a.wav|hi\nb.flac|yo\n"})
    exc = rejected(svc, [put("voice.zip", upload)], "audio")
    assert exc.status == 422 and exc.code == "bad_audio" and "voice.zip/b.flac" in exc.message


def wav_with_chunk_after_data(chunk_id: bytes, payload: bytes) -> bytes:
    """A valid WAV with an extra chunk (padded to an even size) after the samples."""
    clip = wav(0.5)
    extra = chunk_id + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")
    body = clip + extra
    return body[:4] + struct.pack("<I", len(body) - 8) + body[8:]


@pytest.mark.parametrize(
    "clip",
    [
        pytest.param(lambda: wav_with_chunk_after_data(b"LIST", b"INFOINAM\x05\0\0\0Song\0\0"), id="list-chunk"),
        pytest.param(lambda: wav_with_chunk_after_data(b"id3 ", b"odd"), id="odd-sized-chunk"),
        pytest.param(lambda: _wav_24bit_stereo(), id="24-bit-stereo"),
        pytest.param(lambda: wav(0.3, rate=22050), id="plain"),
    ],
)
def test_well_formed_wavs_are_still_accepted(svc, put, clip):
    upload = zip_of({"a.wav": clip(), "metadata.csv": "a.wav|hello\n"})
    summary = svc.create([put("voice.zip", upload)], "audio", "voices")
    assert summary["num_items"] == 1


def _wav_24bit_stereo() -> bytes:
    buf = io.BytesIO()
    t = np.arange(8000) / 16000
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], axis=1) * 0.3
    sf.write(buf, stereo.astype("float32"), 16000, subtype="PCM_24", format="WAV")
    return buf.getvalue()
