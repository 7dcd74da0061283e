"""Datasets over HTTP: uploads of each kind, hostile uploads as JSON errors, list/get/delete,
item files, and who may upload."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from studio.config import StudioConfig, UploadLimits

LIMITS = UploadLimits(max_total_bytes=200_000, max_files=20, max_uncompressed_bytes=1_000_000)


@pytest.fixture
def config(tmp_path):
    """The shared api_client fixture builds its app from this config: small upload limits."""
    return StudioConfig(data_dir=tmp_path / "data", offline=True, uploads=replace(LIMITS))


def png(w: int = 80, h: int = 60, color=(10, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return buf.getvalue()


def wav(seconds: float = 0.25, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * rate), dtype="float32"), rate, format="WAV")
    return buf.getvalue()


def zip_of(entries: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in entries.items():
            z.writestr(name, content)
    return buf.getvalue()


def upload(client, files: list[tuple[str, bytes]], kind: str = "text", name: str = "my data", **fields):
    data = {"kind": kind, "name": name, **{k: str(v) for k, v in fields.items()}}
    return client.post("/api/v1/datasets", files=[("file", f) for f in files], data=data)


def error_of(r, status: int, code: str | None = None) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"code", "message"} and err["message"]
    if code:
        assert err["code"] == code
    return err["message"]


def nothing_left(client) -> bool:
    data = client.studio.data_dir
    leftovers = [p for p in (data / "tmp").iterdir() if p.name.startswith(("api-upload-", "upload-"))]
    return not leftovers and not list((data / "datasets").iterdir()) and client.studio.datasets.list() == []


# -- uploads of each kind ---------------------------------------------------------------------------


def test_text_upload_is_201_with_counts_and_options(api_client):
    text = "A first document, long enough.\n\nA first document, long enough.\n\ntiny\n"
    r = upload(api_client, [("stories.txt", text.encode())], name="Stories", dedupe="true", min_chars=10)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= {"id", "name", "kind", "num_items", "stats", "warnings"}
    assert body["name"] == "Stories" and body["kind"] == "text" and body["num_items"] == 1
    assert body["stats"]["format"] == "documents"
    assert any("Removed 1 duplicate" in w for w in body["warnings"])
    assert any("Dropped 1 row" in w for w in body["warnings"])
    assert not [p for p in (api_client.studio.data_dir / "tmp").iterdir() if p.name.startswith("api-upload-")]


def test_image_upload_preview_and_item_files(api_client):
    meta = json.dumps({"file_name": "a.png", "text": "a blue box"}) + "\n"
    r = upload(
        api_client,
        [("imgs.zip", zip_of({"a.png": png(), "b.png": png(64, 64), "metadata.jsonl": meta}))],
        kind="image",
        name="boxes",
    )
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["num_items"] == 2 and ds["stats"]["captioned"] == 1

    detail = api_client.get(f"/api/v1/datasets/{ds['id']}").json()
    first = detail["preview"][0]
    assert first["text"] == "a blue box" and (first["width"], first["height"]) == (80, 60)
    assert first["url"] == f"/api/v1/datasets/{ds['id']}/items/0/file"
    item = api_client.get(first["url"])
    assert item.status_code == 200 and item.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(item.content)).size == (80, 60)

    error_of(api_client.get(f"/api/v1/datasets/{ds['id']}/items/2/file"), 404)
    error_of(api_client.get(f"/api/v1/datasets/{ds['id']}/items/-1/file"), 404)
    error_of(api_client.get(f"/api/v1/datasets/{ds['id']}/items/x/file"), 422, "invalid_field")
    error_of(api_client.get("/api/v1/datasets/..%2F..%2Fetc/items/0/file"), 404)


def test_several_loose_files_in_one_upload(api_client):
    files = [("b.png", png()), ("a.png", png(70, 70)), ("a.txt", b"a caption")]
    r = upload(api_client, files, kind="image")
    assert r.status_code == 201, r.text
    assert r.json()["num_items"] == 2 and r.json()["stats"]["captioned"] == 1


def test_audio_upload(api_client):
    z = zip_of(
        {
            "wavs/a.wav": wav(),
            "wavs/b.wav": wav(0.5),
            "metadata.csv": "wavs/a.wav|Hello.\nwavs/b.wav|World.\n",
        }
    )
    r = upload(api_client, [("voice.zip", z)], kind="audio")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["num_items"] == 2 and body["stats"]["total_duration_s"] == 0.75
    item = api_client.get(f"/api/v1/datasets/{body['id']}/items/1/file")
    assert item.status_code == 200 and item.headers["content-type"] == "audio/wav"
    assert sf.info(io.BytesIO(item.content)).frames == 4000


def test_list_get_delete(api_client):
    a = upload(
        api_client, [("a.jsonl", b'{"prompt": "Hi", "completion": "Hello there"}\n')], name="qa"
    ).json()
    listed = api_client.get("/api/v1/datasets").json()["datasets"]
    assert [d["id"] for d in listed] == [a["id"]] and listed[0]["num_items"] == 1
    detail = api_client.get(f"/api/v1/datasets/{a['id']}").json()
    assert detail["preview"] == [{"prompt": "Hi", "completion": "Hello there"}]
    r = api_client.delete(f"/api/v1/datasets/{a['id']}")
    assert r.status_code == 200 and r.json() == {"deleted": a["id"]}
    assert api_client.get("/api/v1/datasets").json() == {"datasets": []}
    error_of(api_client.get(f"/api/v1/datasets/{a['id']}"), 404, "dataset_not_found")
    error_of(api_client.delete(f"/api/v1/datasets/{a['id']}"), 404)


def test_the_upload_route_is_documented_as_a_form(api_client):
    spec = api_client.get("/api/v1/openapi.json").json()
    body = spec["paths"]["/datasets"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(body["required"]) == {"file", "kind", "name"}


# -- hostile and malformed uploads: JSON errors, nothing written ---------------------------------------


@pytest.mark.parametrize(
    "files, kind, status, code, says",
    [
        (
            [("evil.zip", zip_of({"../../escape.txt": "x" * 40}))],
            "text",
            422,
            "unsafe_archive",
            "outside the archive",
        ),
        ([("setup.exe", b"MZ" + bytes(100))], "text", 415, "unsupported_file_type", "not supported"),
        ([("notes.txt", png())], "text", 415, "unsupported_file_type", "content is an image"),
        ([("notes.txt", b"ok\n\xff\n")], "text", 422, "bad_encoding", "notes.txt line 2 is not valid UTF-8"),
        ([("rows.csv", b"a,b\n1,2\n")], "text", 422, "missing_column", "has columns 'a', 'b'"),
        ([("cat.png", png()[:40])], "image", 422, "bad_image", "cat.png could not be decoded"),
        ([("voice.zip", zip_of({"a.wav": wav()}))], "audio", 422, "missing_file", "metadata.csv"),
        ([("empty.txt", b"")], "text", 422, "empty_file", "empty.txt is empty"),
    ],
)
def test_hostile_uploads_are_json_errors(api_client, files, kind, status, code, says):
    message = error_of(upload(api_client, files, kind=kind), status, code)
    assert says in message
    assert nothing_left(api_client)


def test_missing_fields_are_422(api_client):
    r = api_client.post(
        "/api/v1/datasets", data={"kind": "text", "name": "x"}, files=[("other", ("a.txt", b"hello"))]
    )
    assert "Unknown form field 'other'" in error_of(r, 422, "invalid_field")
    r = api_client.post("/api/v1/datasets", data={"kind": "text", "name": "x"}, files=[("file", ("", b""))])
    assert "no 'file' field" in error_of(r, 422, "missing_file")
    r = api_client.post("/api/v1/datasets", json={"kind": "text", "name": "x"})
    assert "multipart/form-data" in error_of(r, 422, "missing_file")
    r = api_client.post(
        "/api/v1/datasets", files=[("file", ("a.txt", b"some text here"))], data={"name": "x"}
    )
    assert "'kind' is required" in error_of(r, 422)
    r = upload(api_client, [("a.txt", b"some text here")], kind="video")
    assert "Unknown dataset kind 'video'" in error_of(r, 422)
    r = upload(api_client, [("a.txt", b"some text here")], name="   ")
    assert error_of(r, 422) == "Give the dataset a name."
    r = upload(api_client, [("a.txt", b"some text here")], dedupe="maybe")
    assert "'dedupe' must be true or false" in error_of(r, 422)
    r = upload(api_client, [("a.txt", b"some text here")], min_chars="-3")
    assert "'min_chars' must be 0 or more" in error_of(r, 422)
    assert nothing_left(api_client)


def test_streamed_upload_over_the_limit_stops_with_413(api_client):
    boundary = "studio-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\ntext\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    sent = []

    def body():  # no Content-Length: the server only learns the size by reading
        yield head
        for _ in range(100):
            sent.append(1)
            yield b"word " * 2000  # 10 kB a chunk, 1 MB in all
        yield f"\r\n--{boundary}--\r\n".encode()

    r = api_client.post(
        "/api/v1/datasets",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "over the limit" in error_of(r, 413, "upload_too_large")
    assert nothing_left(api_client)


def test_content_length_over_the_limit_is_413_before_reading(api_client):
    r = api_client.post(
        "/api/v1/datasets",
        content=b"x" * 10,
        headers={"content-type": "multipart/form-data; boundary=b", "content-length": "999999999"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] in ("too_large", "upload_too_large")


def test_truncated_multipart_body_is_400(api_client):
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello, this is cut'
    r = api_client.post(
        "/api/v1/datasets", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    error_of(r, 400, "bad_multipart")
    assert nothing_left(api_client)


# -- who may upload ---------------------------------------------------------------------------------------


def test_only_admins_upload_or_delete(tmp_path):
    from fastapi.testclient import TestClient

    from studio.app import build_app

    config = StudioConfig(
        data_dir=tmp_path / "data",
        offline=True,
        accounts=[("ada", "pw-a"), ("bob", "pw-b")],
        uploads=replace(LIMITS),
    )

    def auth(user: str, password: str) -> dict:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    with TestClient(build_app(config, ui=False)) as client:
        files = [("file", ("a.txt", b"a document of text"))]
        data = {"kind": "text", "name": "x"}
        assert client.post("/api/v1/datasets", files=files, data=data).status_code == 401
        error_of(client.post("/api/v1/datasets", files=files, data=data, headers=auth("bob", "pw-b")), 403)
        r = client.post("/api/v1/datasets", files=files, data=data, headers=auth("ada", "pw-a"))
        assert r.status_code == 201
        ds_id = r.json()["id"]
        assert (
            client.get("/api/v1/datasets", headers=auth("bob", "pw-b")).json()["datasets"][0]["id"] == ds_id
        )
        error_of(client.delete(f"/api/v1/datasets/{ds_id}", headers=auth("bob", "pw-b")), 403)
        assert client.delete(f"/api/v1/datasets/{ds_id}", headers=auth("ada", "pw-a")).status_code == 200
