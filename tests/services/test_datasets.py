"""DatasetService: every format stored in the layout the `datasets` library reads, and every
malformed or hostile upload refused with a 4xx and a message that names the problem — with
nothing left behind (no folder in datasets/, no row, nothing in tmp/)."""

from __future__ import annotations

import io
import json
import random
import stat
import struct
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from studio.config import StudioConfig, UploadLimits
from studio.services.datasets import DatasetService, IncomingFile
from studio.services.errors import StudioError
from studio.store import Store

# -- fixtures and file makers ---------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_service(data_dir):
    stores = []

    def make(**limits) -> DatasetService:
        config = StudioConfig(data_dir=data_dir, uploads=replace(UploadLimits(), **limits))
        store = Store(data_dir / "studio.db")
        stores.append(store)
        return DatasetService(config, store)

    yield make
    for s in stores:
        s.close()


@pytest.fixture
def svc(make_service) -> DatasetService:
    return make_service()


@pytest.fixture
def put(tmp_path):
    """Write bytes or text to an upload temp file (outside the data dir) → IncomingFile."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    counter = iter(range(10_000))

    def put(name: str, content: bytes | str) -> IncomingFile:
        path = folder / f"upload-{next(counter)}"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return IncomingFile(name=name, path=path)

    return put


def png(w: int = 80, h: int = 80, color=(200, 30, 30), mode: str = "RGB", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), color).save(buf, format=fmt)
    return buf.getvalue()


def noise_png(w: int = 64, h: int = 64, seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR (with a correct CRC) declares width × height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def wav(seconds: float = 0.5, rate: int = 16000, fmt: str = "WAV") -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32"), rate, format=fmt)
    return buf.getvalue()


def zip_of(entries: dict[str, bytes | str], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, content in entries.items():
            z.writestr(name, content)
    return buf.getvalue()


def zip_with_entry(info: zipfile.ZipInfo, content: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ok.txt", "a perfectly fine document of text")
        z.writestr(info, content)
    return buf.getvalue()


def special_entry(name: str, file_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix
    info.external_attr = (file_type | 0o777) << 16
    return info


def nothing_written(svc: DatasetService) -> bool:
    data = svc.config.data_dir
    return (
        list((data / "datasets").iterdir()) == []
        and svc.store.query_one("SELECT COUNT(*) AS n FROM datasets")["n"] == 0
        and list((data / "tmp").iterdir()) == []
    )


def rejected(svc: DatasetService, files, kind: str = "text", name: str = "my data", **options) -> StudioError:
    with pytest.raises(StudioError) as info:
        svc.create(files, kind, name, **options)
    assert nothing_written(svc), "a rejected upload left something behind"
    return info.value


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- hostile and malformed uploads: 4xx, a specific message, nothing written ------------------------


def test_corrupt_png_is_422_naming_the_file(svc, put):
    good = noise_png()
    exc = rejected(svc, [put("cat.png", good[: len(good) // 2])], "image")
    assert exc.status == 422 and exc.code == "bad_image"
    assert "cat.png could not be decoded as an image" in exc.message
    garbage = good[:33] + bytes(random.Random(0).randrange(256) for _ in range(400))  # header + noise
    exc = rejected(svc, [put("dog.png", garbage)], "image")
    assert exc.status == 422 and "dog.png could not be decoded" in exc.message
    assert "upload-" not in exc.message  # never our temp file's path


def test_png_declaring_50000_by_50000_pixels_is_413_before_decoding(svc, put):
    bomb = png_declaring(50_000, 50_000)
    assert len(bomb) < 100
    exc = rejected(svc, [put("bomb.png", bomb)], "image")
    assert exc.status == 413 and exc.code == "image_too_large"
    assert "bomb.png" in exc.message and "Resize it" in exc.message


def test_image_over_the_pixel_limit_is_413_with_its_size(make_service, put):
    svc = make_service(max_image_pixels=100_000)
    exc = rejected(svc, [put("big.png", png_declaring(1000, 1000))], "image")
    assert exc.status == 413
    assert "big.png is 1,000×1,000 = 1,000,000 pixels; the limit is 100,000" in exc.message


@pytest.mark.parametrize(
    "entry, why",
    [
        ("../evil.txt", "points outside the archive"),
        ("docs/../../evil.txt", "points outside the archive"),
        ("/etc/passwd.txt", "has an absolute path"),
        ("C:/Windows/evil.txt", "has an absolute path"),
        ("..\\evil.txt", "uses backslashes"),
    ],
)
def test_zip_entries_with_escaping_paths_are_unsafe(svc, put, entry, why):
    exc = rejected(svc, [put("docs.zip", zip_with_entry(zipfile.ZipInfo(entry)))])
    assert exc.status == 422 and exc.code == "unsafe_archive"
    assert "docs.zip was refused" in exc.message and why in exc.message


def test_zip_with_a_symlink_entry_is_unsafe(svc, put):
    exc = rejected(
        svc, [put("docs.zip", zip_with_entry(special_entry("link.txt", stat.S_IFLNK), b"/etc/passwd"))]
    )
    assert exc.status == 422 and exc.code == "unsafe_archive" and "is a symbolic link" in exc.message


def test_zip_with_a_device_entry_is_unsafe(svc, put):
    exc = rejected(svc, [put("docs.zip", zip_with_entry(special_entry("tty.txt", stat.S_IFCHR)))])
    assert exc.status == 422 and "device or special file" in exc.message


def test_zip_bomb_by_compression_ratio_is_413(make_service, put):
    svc = make_service(max_compression_ratio=100)
    bomb = zip_of({"zeros.txt": b"\0" * (5 * 1024 * 1024)})
    assert len(bomb) < 20_000
    exc = rejected(svc, [put("bomb.zip", bomb)])
    assert exc.status == 413 and exc.code == "compression_ratio_too_high"
    assert "bomb.zip/zeros.txt expands" in exc.message and "zip bombs" in exc.message


def test_zip_declaring_more_than_the_uncompressed_limit_is_413(make_service, put):
    svc = make_service(max_uncompressed_bytes=10_000)
    text = " ".join(f"word{i}" for i in range(3000))  # ~26 kB, compresses only a few times
    exc = rejected(svc, [put("big.zip", zip_of({"a.txt": text}))])
    assert exc.status == 413 and exc.code == "archive_too_large"
    assert "big.zip unpacks to more than" in exc.message


def test_nested_zip_is_422(svc, put):
    inner = zip_of({"a.txt": "some text inside"})
    exc = rejected(svc, [put("outer.zip", zip_of({"inner.zip": inner}))])
    assert exc.status == 422 and exc.code == "nested_archive" and "inner.zip" in exc.message
    exc = rejected(svc, [put("outer.zip", zip_of({"notes.txt": inner}))])  # a zip in disguise
    assert exc.status == 422 and exc.code == "nested_archive"


def test_zip_entry_with_a_bad_checksum_is_422(svc, put):
    data = bytearray(zip_of({"a.txt": "hello world, a document"}, compression=zipfile.ZIP_STORED))
    at = data.index(b"hello")
    data[at] ^= 0xFF
    exc = rejected(svc, [put("docs.zip", bytes(data))])
    assert (
        exc.status == 422 and exc.code == "bad_archive" and "docs.zip/a.txt could not be read" in exc.message
    )


def test_zip_with_absurdly_many_entries_is_413_before_its_directory_is_read(make_service, put):
    svc = make_service(max_files=1)
    upload = zip_of({f"d{i}/": b"" for i in range(1010)})  # folders only: the exact count would pass
    exc = rejected(svc, [put("many.zip", upload)])
    assert exc.status == 413 and "many.zip has 1,010 entries" in exc.message


def test_fake_and_damaged_zips(svc, put):
    exc = rejected(svc, [put("data.zip", "just text")])
    assert exc.status == 415 and "data.zip is named like a zip archive but its content is text" in exc.message
    damaged = zip_of({"a.txt": "some document"})[:-30]
    exc = rejected(svc, [put("data.zip", b"PK\x03\x04" + damaged[4:])])
    assert exc.status in (415, 422) and "data.zip" in exc.message


def test_deeply_nested_json_is_422_not_a_crash(svc, put):
    exc = rejected(svc, [put("deep.json", "[" * 100_000)])
    assert exc.status == 422 and exc.code == "bad_json" and "deep.json" in exc.message
    exc = rejected(svc, [put("deep.jsonl", '{"text": "fine row here"}\n' + "[" * 100_000 + "\n")])
    assert exc.status == 422 and "deep.jsonl line 2" in exc.message


def test_non_utf8_text_names_file_line_and_byte(svc, put):
    exc = rejected(svc, [put("notes.txt", b"line one\nline two\nbad \xff here\n")])
    assert exc.status == 422 and exc.code == "bad_encoding"
    assert exc.message == (
        "notes.txt line 3 is not valid UTF-8 (byte 0xff at column 5). Save the file as UTF-8 and upload again."
    )


def test_utf16_text_is_422_saying_to_save_as_utf8(svc, put):
    exc = rejected(svc, [put("notes.txt", "hello".encode("utf-16"))])
    assert exc.status == 422 and "saved as UTF-16" in exc.message


def test_empty_file_is_422(svc, put):
    exc = rejected(svc, [put("empty.txt", b"")])
    assert exc.status == 422 and exc.code == "empty_file" and "empty.txt is empty" in exc.message
    exc = rejected(svc, [put("blank.txt", "\n\n   \n")])
    assert exc.status == 422 and "blank.txt has no text" in exc.message


@pytest.mark.parametrize(
    "kind, says", [("text", "no text files"), ("image", "no images"), ("audio", "no audio")]
)
def test_empty_zip_is_422(svc, put, kind, says):
    exc = rejected(svc, [put("empty.zip", zip_of({}))], kind)
    assert exc.status == 422 and exc.code == "empty_dataset" and says in exc.message


def test_csv_without_a_text_column_names_the_columns(svc, put):
    exc = rejected(svc, [put("data.csv", "title,body\nA,first\nB,second\n")])
    assert exc.status == 422 and exc.code == "missing_column"
    assert (
        "data.csv has columns 'title', 'body'; expected a 'text' column, or 'prompt' and 'completion'"
        in exc.message
    )


def test_jsonl_with_a_broken_line_names_the_line(svc, put):
    exc = rejected(svc, [put("rows.jsonl", '{"text": "first row"}\n{"text": "second\n{"text": "third"}\n')])
    assert exc.status == 422 and exc.code == "bad_json"
    assert exc.message.startswith("rows.jsonl line 2 is not valid JSON")


def test_json_rows_missing_keys_name_the_item_and_keys(svc, put):
    rows = [{"text": "fine row"}, {"prompt": "only a prompt"}]
    exc = rejected(svc, [put("rows.json", json.dumps(rows))])
    assert exc.status == 422 and exc.code == "missing_column"
    assert "rows.json item 2 has keys 'prompt'; expected 'text', or 'prompt' and 'completion'" in exc.message
    exc = rejected(svc, [put("rows.jsonl", '{"text": 5}\n')])
    assert exc.status == 422 and "'text' must be a string" in exc.message


def test_mixed_row_formats_are_422(svc, put):
    exc = rejected(
        svc,
        [
            put("a.jsonl", '{"text": "a document"}\n'),
            put("b.jsonl", '{"prompt": "q", "completion": "an answer"}\n'),
        ],
    )
    assert exc.status == 422 and exc.code == "mixed_formats" and "b.jsonl line 1" in exc.message


def test_png_bytes_named_txt_is_415(svc, put):
    exc = rejected(svc, [put("notes.txt", png())])
    assert exc.status == 415
    assert "notes.txt is named like text file but its content is an image" in exc.message


def test_text_named_png_is_415(svc, put):
    exc = rejected(svc, [put("photo.png", "just some words")], "image")
    assert (
        exc.status == 415 and "photo.png is named like an image file but its content is text" in exc.message
    )


@pytest.mark.parametrize("name", ["setup.exe", "data.bin", "README"])
def test_unsupported_types_are_415(svc, put, name):
    exc = rejected(svc, [put(name, b"MZ\x90\x00\x03" + bytes(200))])
    assert exc.status == 415 and exc.code == "unsupported_file_type" and "are not supported" in exc.message


def test_random_binary_named_txt_is_415(svc, put):
    exc = rejected(svc, [put("notes.txt", bytes(range(256)) * 4)])
    assert exc.status == 415 and "binary data" in exc.message


def test_image_in_a_text_dataset_is_415(svc, put):
    exc = rejected(svc, [put("cat.png", png())], "text")
    assert exc.status == 415 and "cat.png is an image, but this is a text dataset" in exc.message


def test_too_many_files_is_413(make_service, put):
    svc = make_service(max_files=3)
    exc = rejected(svc, [put(f"{i}.txt", f"document number {i}") for i in range(4)])
    assert exc.status == 413 and exc.code == "too_many_files" and "the limit is 3" in exc.message
    entries = {f"{i}.txt": f"document number {i}" for i in range(5)}
    exc = rejected(svc, [put("many.zip", zip_of(entries))])
    assert exc.status == 413 and "more than 3 files" in exc.message


def test_upload_over_the_total_size_is_413(make_service, put):
    svc = make_service(max_total_bytes=1000)
    exc = rejected(svc, [put("big.txt", "x" * 600), put("more.txt", "y" * 600)])
    assert exc.status == 413 and exc.code == "upload_too_large" and "the limit is" in exc.message


def test_text_row_over_max_chars_is_413(make_service, put):
    svc = make_service(max_text_chars=50)
    exc = rejected(svc, [put("long.txt", "short one\n\n" + "a" * 60)])
    assert exc.status == 413 and exc.code == "text_too_long"
    assert "long.txt line 3 has 60 characters; the limit is 50 per row" in exc.message
    exc = rejected(svc, [put("long.csv", "text\nfine\n" + "b" * 80 + "\n")])
    assert exc.status == 413 and "long.csv line 3" in exc.message


def test_unknown_kind_is_422(svc, put):
    exc = rejected(svc, [put("a.txt", "some document text")], "video")
    assert exc.status == 422 and "Unknown dataset kind 'video'" in exc.message


@pytest.mark.parametrize("name", ["", "   ", "\n\t"])
def test_empty_name_is_422(svc, put, name):
    exc = rejected(svc, [put("a.txt", "some document text")], name=name)
    assert exc.status == 422 and exc.message == "Give the dataset a name."


def test_overlong_name_and_no_files_are_422(svc, put):
    exc = rejected(svc, [put("a.txt", "some document text")], name="n" * 101)
    assert exc.status == 422 and "the limit is 100" in exc.message
    exc = rejected(svc, [])
    assert exc.status == 422 and exc.code == "missing_file"


def test_audio_zip_with_a_corrupt_wav_names_it(svc, put):
    bad = b"RIFF" + struct.pack("<I", 100) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + b"\xff" * 16
    upload = zip_of({"a.wav": wav(), "b.wav": bad, "metadata.csv": "a.wav|hello\nb.wav|world\n"})
    exc = rejected(svc, [put("voice.zip", upload)], "audio")
    assert exc.status == 422 and exc.code == "bad_audio"
    assert "voice.zip/b.wav could not be read as audio" in exc.message and "upload-" not in exc.message


def test_audio_zip_without_metadata_csv_is_422(svc, put):
    exc = rejected(svc, [put("voice.zip", zip_of({"a.wav": wav()}))], "audio")
    assert exc.status == 422 and "no metadata.csv" in exc.message


def test_audio_metadata_referencing_a_missing_clip_is_422(svc, put):
    upload = zip_of({"a.wav": wav(), "metadata.csv": "a.wav|hello\nc9.wav|missing\n"})
    exc = rejected(svc, [put("voice.zip", upload)], "audio")
    assert exc.status == 422 and exc.code == "missing_file"
    assert "voice.zip/metadata.csv line 2 refers to 'c9.wav'" in exc.message


def test_audio_clip_over_the_duration_limit_is_413(make_service, put):
    svc = make_service(max_audio_seconds=0.5)
    upload = zip_of({"a.wav": wav(1.0), "metadata.csv": "a.wav|hello\n"})
    exc = rejected(svc, [put("voice.zip", upload)], "audio")
    assert exc.status == 413 and exc.code == "audio_too_long"
    assert "voice.zip/a.wav is 1.0 s long; the limit is 0.5 s per clip" in exc.message


def test_image_metadata_referencing_a_missing_file_is_422(svc, put):
    meta = '{"file_name": "a.png", "text": "red"}\n{"file_name": "b.png", "text": "missing"}\n'
    exc = rejected(svc, [put("imgs.zip", zip_of({"a.png": png(), "metadata.jsonl": meta}))], "image")
    assert exc.status == 422 and exc.code == "missing_file"
    assert "imgs.zip/metadata.jsonl line 2 refers to 'b.png'" in exc.message


def test_audio_in_an_image_dataset_is_415(svc, put):
    exc = rejected(svc, [put("clip.wav", wav())], "image")
    assert exc.status == 415 and "clip.wav is audio, but this is an image dataset" in exc.message


def test_a_failed_database_insert_removes_the_folder(svc, put, monkeypatch):
    def broken():
        raise RuntimeError("disk full")

    monkeypatch.setattr(svc.store, "transaction", broken)
    with pytest.raises(RuntimeError):
        svc.create([put("a.txt", "a document of text")], "text", "x")
    assert nothing_written(svc)


# -- text ---------------------------------------------------------------------------------------------


def test_txt_documents_are_split_on_blank_lines(svc, put):
    text = "\ufeffFirst document, line one.\nStill the first.\n\n\n  Second document here.  \n\nhi\n"
    summary = svc.create([put("stories.txt", text.encode("utf-8"))], "text", "  Stories  ")
    assert summary["name"] == "Stories" and summary["kind"] == "text" and summary["num_items"] == 3
    rows = read_jsonl(svc.path(summary["id"]) / "data.jsonl")
    assert rows == [
        {"text": "First document, line one.\nStill the first."},
        {"text": "Second document here."},
        {"text": "hi"},
    ]
    stats = summary["stats"]
    assert stats["items"] == 3 and stats["format"] == "documents"
    assert stats["min_chars"] == 2 and stats["max_chars"] == 42 and stats["words"] == 11
    assert stats["characters"] == 42 + 21 + 2
    assert any("shorter than 20 characters" in w for w in summary["warnings"])
    assert nothing_left_in_tmp(svc)


def nothing_left_in_tmp(svc) -> bool:
    return list((svc.config.data_dir / "tmp").iterdir()) == []


def test_prompt_completion_formats_jsonl_json_csv_in_one_dataset(svc, put):
    files = [
        put(
            "a.jsonl",
            '{"prompt": "2+2?", "completion": "4", "extra": 1}\n\n{"prompt": "Hi", "completion": "Hello"}\n',
        ),
        put("b.json", json.dumps([{"prompt": "Sky?", "completion": "Blue"}])),
        put("c.csv", 'Prompt,Completion\n"Name, please?","Ada"\n'),
    ]
    summary = svc.create(files, "text", "qa")
    assert summary["num_items"] == 4 and summary["stats"]["format"] == "prompt_completion"
    rows = read_jsonl(svc.path(summary["id"]) / "data.jsonl")
    assert rows[0] == {"prompt": "2+2?", "completion": "4"} and rows[3] == {
        "prompt": "Name, please?",
        "completion": "Ada",
    }


def test_zip_of_text_files_skips_junk_and_reports_ignored(svc, put):
    upload = zip_of(
        {
            "corpus/a.txt": "A first document that is long enough.",
            "corpus/b.csv": "text\nA csv row that is long enough.\n",
            "__MACOSX/corpus/._a.txt": b"\0\0junk",
            "corpus/.DS_Store": b"\0\0junk",
            "corpus/README.md": "# about",
        }
    )
    summary = svc.create([put("corpus.zip", upload)], "text", "zipped")
    assert summary["num_items"] == 2 and summary["stats"]["files"] == 2
    assert summary["warnings"] == [
        "Ignored 1 file of a type datasets do not use: corpus.zip/corpus/README.md."
    ]


def test_json_lines_named_json_and_single_objects_are_read(svc, put):
    files = [
        put("a.json", '{"text": "one document here"}\n{"text": "two documents here"}\n'),
        put("b.json", '{"text": "a single object document"}'),
    ]
    assert svc.create(files, "text", "j")["num_items"] == 3


def test_duplicates_are_warned_about_or_removed(svc, put):
    text = "the same words here\n\nthe  same\nwords here\n\nsomething else entirely\n"
    warned = svc.create([put("a.txt", text)], "text", "warned")
    assert warned["num_items"] == 3
    assert any("1 row is an exact duplicate" in w for w in warned["warnings"])
    deduped = svc.create([put("a.txt", text)], "text", "deduped", dedupe=True)
    assert deduped["num_items"] == 2
    assert "Removed 1 duplicate row (exact, ignoring whitespace)." in deduped["warnings"]


def test_min_chars_drops_short_rows_and_says_how_many(svc, put):
    text = "tiny\n\nsmall\n\nthis one is long enough to keep\n"
    summary = svc.create([put("a.txt", text)], "text", "filtered", min_chars=10)
    assert summary["num_items"] == 1
    assert "Dropped 2 rows shorter than 10 characters (min_chars)." in summary["warnings"]
    exc = rejected_after(svc, [put("a.txt", "tiny\n\nsmall\n")], min_chars=100)
    assert exc.status == 422 and "Lower min_chars" in exc.message


def rejected_after(svc, files, **options) -> StudioError:
    """Like rejected(), for a service that already holds datasets."""
    before = len(svc.list())
    with pytest.raises(StudioError) as info:
        svc.create(files, "text", "x", **options)
    assert len(svc.list()) == before and nothing_left_in_tmp(svc)
    return info.value


def test_text_dataset_loads_with_the_datasets_library(svc, put, tmp_path):
    from datasets import load_dataset

    summary = svc.create(
        [put("a.jsonl", '{"text": "hello there"}\n{"text": "general kenobi"}\n')], "text", "hf"
    )
    ds = load_dataset(
        "json",
        data_files=str(svc.path(summary["id"]) / "data.jsonl"),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert ds.num_rows == 2 and ds[1]["text"] == "general kenobi"


# -- images ---------------------------------------------------------------------------------------------


def test_loose_images_with_sidecar_captions(svc, put):
    files = [
        put("b.png", png(100, 80)),
        put("a.jpg", png(40, 30, fmt="JPEG")),
        put("b.txt", "a red square\n"),
        put("stray.txt", "no image is called stray"),
    ]
    summary = svc.create(files, "image", "loose")
    assert summary["num_items"] == 2
    stats = summary["stats"]
    assert (stats["min_width"], stats["max_width"], stats["min_height"], stats["max_height"]) == (
        40,
        100,
        30,
        80,
    )
    assert stats["captioned"] == 1 and stats["mean_width"] == 70.0
    warnings = " ".join(summary["warnings"])
    assert "1 image is smaller than 64 px" in warnings and "2 different sizes" in warnings
    assert "1 of 2 images has no caption" in warnings and "stray.txt" in warnings
    folder = svc.path(summary["id"])
    assert read_jsonl(folder / "metadata.jsonl") == [
        {"file_name": "000000.png", "text": "a red square"},
        {"file_name": "000001.png", "text": ""},
    ]
    with Image.open(folder / "000001.png") as im:
        assert im.format == "PNG" and im.mode == "RGB" and im.size == (40, 30)


def test_zip_with_metadata_jsonl_in_a_subfolder_and_a_transparent_image(svc, put, tmp_path):
    from datasets import load_dataset

    transparent = png(70, 70, color=(0, 0, 0, 0), mode="RGBA")
    meta = "\n".join(
        json.dumps(r)
        for r in [{"file_name": "train/a.png", "text": "red"}, {"file_name": "train/b.png", "text": "clear"}]
    )
    upload = zip_of(
        {
            "set/metadata.jsonl": meta,
            "set/train/a.png": png(),
            "set/train/b.png": transparent,
            "set/train/c.webp": png(90, 90, fmt="WEBP"),
        }
    )
    summary = svc.create([put("set.zip", upload)], "image", "zipped")
    assert summary["num_items"] == 3 and summary["stats"]["captioned"] == 2
    folder = svc.path(summary["id"])
    with Image.open(folder / "000001.png") as im:
        assert im.getpixel((5, 5)) == (255, 255, 255)  # transparency flattened onto white
        assert not im.info.get("exif") and "icc_profile" not in im.info
    detail = svc.get(summary["id"])
    assert detail["preview"][0] == {
        "index": 0,
        "file_name": "000000.png",
        "text": "red",
        "width": 80,
        "height": 80,
    }
    assert svc.item_path(summary["id"], 2) == folder / "000002.png"
    ds = load_dataset(
        "imagefolder", data_dir=str(folder), split="train", cache_dir=str(tmp_path / "hf-cache")
    )
    assert ds.num_rows == 3 and ds[0]["text"] == "red" and ds[2]["image"].size == (90, 90)


def test_every_supported_image_format_is_accepted(svc, put):
    gif = io.BytesIO()
    frames = [Image.new("RGB", (64, 64), (80 * i, 0, 0)) for i in range(3)]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    files = [
        put("a.bmp", png(fmt="BMP")),
        put("b.gif", gif.getvalue()),
        put("c.webp", png(fmt="WEBP")),
        put("d.jpeg", png(fmt="JPEG")),
        put("e.png", png(mode="L", color=128)),
        put("f.png", png(fmt="JPEG")),
    ]  # a JPEG named .png: still an image, re-encoded anyway
    summary = svc.create(files, "image", "formats")
    assert summary["num_items"] == 6
    assert "1 animated image: only the first frame is used." in summary["warnings"]
    assert "1 image is an exact duplicate of an earlier one." in summary["warnings"]


def test_exif_orientation_is_applied_and_metadata_stripped(svc, put):
    img = Image.new("RGB", (60, 40), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    summary = svc.create([put("phone.jpg", buf.getvalue())], "image", "phone")
    assert (summary["stats"]["min_width"], summary["stats"]["min_height"]) == (40, 60)
    with Image.open(svc.item_path(summary["id"], 0)) as im:
        assert "exif" not in im.info


def test_preview_augment_gives_training_sized_images(svc, put):
    summary = svc.create([put("a.png", noise_png(96, 64))], "image", "aug")
    images = svc.preview_augment(
        summary["id"], ["flip", "rotate", "crop", "color"], n=4, resolution=32, seed=1
    )
    assert len(images) == 4 and all(im.size == (32, 32) for im in images)
    with pytest.raises(StudioError) as info:
        svc.preview_augment(summary["id"], ["blur"])
    assert info.value.status == 422 and "'blur'" in info.value.message
    text = svc.create([put("a.txt", "a document of text")], "text", "t")
    with pytest.raises(StudioError) as info:
        svc.preview_augment(text["id"], ["flip"])
    assert info.value.status == 422


# -- audio ----------------------------------------------------------------------------------------------


def test_spoken_clips_are_prepared_as_training_will_hear_them(svc, put):
    """Real speech (espeak-ng's): a quiet sentence padded with silence is trimmed and normalised; a
    22 s recording is cut at its pauses and transcribed; noise is kept and marked."""
    from engines.speech.espeak import Espeak, available
    from engines.speech.intelligibility import SENTENCES

    if not available():
        pytest.skip("espeak-ng library missing")
    engine, rate = Espeak(), 22050

    def encode(wave: np.ndarray) -> bytes:
        buf = io.BytesIO()
        sf.write(buf, wave.astype("float32"), rate, format="WAV")
        return buf.getvalue()

    pause = np.zeros(int(0.7 * rate), np.float32)
    quiet = np.concatenate([pause, pause, engine.say(SENTENCES[0], voice=None, speed=1.0) * 0.05, pause, pause])
    long = np.concatenate([p for text in SENTENCES for p in (engine.say(text, voice=None, speed=1.0), pause)])
    noise = np.random.default_rng(0).normal(0, 0.05, 2 * rate)
    upload = zip_of({"a.wav": encode(quiet), "b.wav": encode(long), "c.wav": encode(noise),
                     "metadata.csv": f"a.wav|{SENTENCES[0]}\nb.wav|all ten sentences\nc.wav|static\n"})
    summary = svc.create([put("voice.zip", upload)], "audio", "speaker")
    rows = read_jsonl(svc.path(summary["id"]) / "metadata.jsonl")
    assert rows[0]["source"] == "voice.zip/a.wav" and rows[0]["issues"] == []
    assert rows[0]["duration_s"] < len(quiet) / rate - 2.0  # the silences are trimmed
    from_long = [r for r in rows if r["source"] == "voice.zip/b.wav"]
    assert len(from_long) >= 2 and all(r["transcribed"] and r["duration_s"] <= 15.2 for r in from_long)
    assert rows[-1]["source"] == "voice.zip/c.wav" and "no speech" in rows[-1]["issues"][0]
    warnings = " ".join(summary["warnings"])
    assert "1 recording longer than 15 s was cut" in warnings and "1 clip holds no speech" in warnings
    assert summary["num_items"] == len(rows) and summary["stats"]["clips_with_issues"] == len(from_long) + 1


def test_ljspeech_style_audio_zip(svc, put):
    upload = zip_of(
        {
            "LJ/metadata.csv": "file_name|transcript\nLJ001|Hello there.|Hello there.\nLJ002|Second clip.\nc3.flac|\n",
            "LJ/wavs/LJ001.wav": wav(0.5, 16000),
            "LJ/wavs/LJ002.wav": wav(1.25, 22050),
            "LJ/c3.flac": wav(0.25, 16000, fmt="FLAC"),
            "LJ/wavs/unlisted.wav": wav(0.5),
        }
    )
    summary = svc.create([put("lj.zip", upload)], "audio", "voice")
    assert summary["num_items"] == 3
    stats = summary["stats"]
    assert stats["total_duration_s"] == 2.0 and stats["sample_rates"] == [16000, 22050]
    assert stats["min_duration_s"] == 0.25 and stats["max_duration_s"] == 1.25
    warnings = " ".join(summary["warnings"])
    assert "Left out 1 clip with no line in metadata.csv: lj.zip/LJ/wavs/unlisted.wav" in warnings
    assert "2 different sample rates" in warnings and "1 clip is shorter than 0.5 s" in warnings
    assert "1 clip has an empty transcript" in warnings
    folder = svc.path(summary["id"])
    rows = read_jsonl(folder / "metadata.jsonl")
    assert rows[1] == {
        "file_name": "000001.wav",
        "text": "Second clip.",
        "duration_s": 1.25,
        "sample_rate": 22050,
        "source": "lj.zip/LJ/wavs/LJ002.wav",
        "issues": ["no speech found (silero-vad): training leaves it out"],  # a sine tone is no voice
    }
    assert "No clip holds speech" in warnings
    info = sf.info(str(folder / "000002.wav"))
    assert info.format == "WAV" and info.samplerate == 16000 and info.frames == 4000
    preview = svc.get(summary["id"])["preview"]
    assert [p["text"] for p in preview] == ["Hello there.", "Second clip.", ""]
    assert svc.item_path(summary["id"], 0).name == "000000.wav"


# -- library: list, get, delete, unknown ids ------------------------------------------------------------


def test_list_get_delete(svc, put):
    first = svc.create([put("a.txt", "the first dataset's document")], "text", "first")
    second = svc.create([put("a.png", png())], "image", "second")
    assert {d["id"] for d in svc.list()} == {first["id"], second["id"]}
    detail = svc.get(first["id"])
    assert detail["preview"] == [{"text": "the first dataset's document"}] and detail["num_items"] == 1
    manifest = json.loads((svc.path(first["id"]) / "manifest.json").read_text())
    assert (
        manifest["format_version"] == 1 and manifest["sources"] == ["a.txt"] and manifest["name"] == "first"
    )
    svc.delete(first["id"])
    assert [d["id"] for d in svc.list()] == [second["id"]]
    assert not (svc.config.data_dir / "datasets" / first["id"]).exists()
    assert nothing_left_in_tmp(svc)
    with pytest.raises(StudioError) as info:
        svc.get(first["id"])
    assert info.value.status == 404
    with pytest.raises(StudioError) as info:
        svc.delete(first["id"])
    assert info.value.status == 404


@pytest.mark.parametrize(
    "bad_id", ["ds_0123456789abcdef", "../../etc", "ds_../../x", "", "DS_0123456789ABCDEF"]
)
def test_unknown_or_malformed_ids_are_404(svc, bad_id):
    for call in (svc.get, svc.path, svc.delete, lambda i: svc.item_path(i, 0)):
        with pytest.raises(StudioError) as info:
            call(bad_id)
        assert info.value.status == 404 and info.value.code == "dataset_not_found"


def test_item_index_out_of_range_or_text_dataset_is_404(svc, put):
    image = svc.create([put("a.png", png())], "image", "one image")
    text = svc.create([put("a.txt", "a document of text")], "text", "t")
    for index in (1, -1):
        with pytest.raises(StudioError) as info:
            svc.item_path(image["id"], index)
        assert info.value.status == 404 and "numbered 0–0" in info.value.message
    with pytest.raises(StudioError) as info:
        svc.item_path(text["id"], 0)
    assert info.value.status == 404


def test_delete_refuses_while_a_job_uses_the_dataset(svc, put):
    summary = svc.create([put("a.txt", "a document of text")], "text", "busy")
    with svc.store.transaction() as c:
        c.execute(
            "INSERT INTO jobs (id, kind, dataset_id, status, created_at, updated_at) "
            "VALUES ('job_1', 'text-lora', ?, 'running', 'now', 'now')",
            (summary["id"],),
        )
    with pytest.raises(StudioError) as info:
        svc.delete(summary["id"])
    assert info.value.status == 409 and "job_1" in info.value.message
    assert svc.path(summary["id"]).is_dir()


def test_start_sweeps_half_finished_uploads(tmp_path):
    from studio.config import StudioConfig
    from studio.services import Studio

    (tmp_path / "d" / "tmp" / "upload-dead").mkdir(parents=True)  # left by a studio that was killed
    (tmp_path / "d" / "datasets" / "ds_00000000000000aa").mkdir(parents=True)
    studio = Studio(StudioConfig(data_dir=tmp_path / "d", offline=True))
    studio.start()
    assert list((studio.data_dir / "tmp").glob("upload-*")) == []
    assert list((studio.data_dir / "datasets").iterdir()) == []
    studio.close()
