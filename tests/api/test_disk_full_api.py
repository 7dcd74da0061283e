"""A full disk is a 507 `disk_full` that says what to do, never a generic 500, and the request
that hit it leaves nothing half-written: no files, no rows."""

from __future__ import annotations

import errno
import threading

import pytest
import soundfile

from studio.api.multipart import StreamingForm
from studio.services.datasets.service import DatasetService


def full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def assert_disk_full(r) -> None:
    assert r.status_code == 507, r.text
    err = r.json()["error"]
    assert err["code"] == "disk_full"
    assert "full" in err["message"] and "nothing was saved" in err["message"].lower()
    assert "Traceback" not in r.text and "Errno" not in err["message"]


def files_under(folder) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def upload(client, text: bytes = b"one document\n\nanother document\n"):
    return client.post("/api/v1/datasets", data={"kind": "text", "name": "notes"},
                       files={"file": ("notes.txt", text, "text/plain")})


def nothing_saved(client) -> bool:
    data = client.studio.data_dir
    return (
        client.studio.store.query_one("SELECT COUNT(*) AS n FROM datasets")["n"] == 0
        and list((data / "datasets").iterdir()) == []
        and [p for p in scratch_entries(client.studio.scratch.root) if p.name != "gradio"] == []
    )


def scratch_entries(root) -> list:
    """What the studio's scratch folder holds (tmp/, or with replicas this one's folder in it)."""
    return list(root.iterdir()) if root.exists() else []


def test_disk_full_while_writing_the_dataset_copy_is_507_and_saves_nothing(api_client, monkeypatch):
    real_build = DatasetService._build

    def half_then_full(self, kind, unpacked, out_dir, **kw):
        real_build(self, kind, unpacked, out_dir, **kw)  # the copy is (partly) there …
        (out_dir / "data.jsonl").open("a").write('{"text": "half a ro')
        full()  # … when the disk runs out

    monkeypatch.setattr(DatasetService, "_build", half_then_full)
    assert_disk_full(upload(api_client))
    assert nothing_saved(api_client)


def test_disk_full_while_the_upload_streams_in_is_507_and_saves_nothing(api_client, monkeypatch):
    real = StreamingForm._on_part_data

    def write_then_full(self, data):
        real(self, data)
        if self._file is not None:
            full()

    monkeypatch.setattr(StreamingForm, "_on_part_data", write_then_full)
    assert_disk_full(upload(api_client))
    assert nothing_saved(api_client)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_quota_is_a_full_disk_too(api_client, monkeypatch, code):
    def over_quota(*_a, **_k):
        raise OSError(code, "no room")

    monkeypatch.setattr(DatasetService, "_build", over_quota)
    assert_disk_full(upload(api_client))


def test_other_os_errors_stay_500(tmp_path):
    from fastapi.testclient import TestClient

    from studio.app import build_app
    from studio.config import StudioConfig

    app = build_app(StudioConfig(data_dir=tmp_path / "data", offline=True), ui=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        def denied(*_a, **_k):
            raise PermissionError(errno.EACCES, "Permission denied")

        app.state.studio.datasets._build = denied  # an instance attribute shadows the method
        r = upload(client)
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"


def test_disk_full_while_writing_a_speech_clip_is_507_and_leaves_no_output(api_client, monkeypatch):
    outputs = api_client.studio.data_dir / "outputs"
    before = files_under(outputs)

    def half_a_clip_then_full(file, *args, **kwargs):
        with open(file, "wb") as fh:
            fh.write(b"RIFF\x00\x00")
        full()

    monkeypatch.setattr(soundfile, "write", half_a_clip_then_full)
    r = api_client.post("/api/v1/speech/generate", json={"text": "Hello there.", "seed": 1})
    assert_disk_full(r)
    assert files_under(outputs) == before
    assert api_client.studio.store.query_one("SELECT COUNT(*) AS n FROM outputs")["n"] == 0


def test_a_full_database_is_507_and_every_acknowledged_rating_is_kept(api_client):
    """SQLite reports a full disk as SQLITE_FULL; the page limit makes the database 'full'."""
    studio = api_client.studio
    ids = [
        studio.outputs.record(kind="text", prompt=f"p{i}", params={}, model="starter/gpt2-tiny", adapter=None,
                              seed=i, user="local", text="t")["id"]
        for i in range(40)
    ]
    if studio.store.dialect != "sqlite":
        pytest.skip("fills the SQLite file to its page limit; PostgreSQL's full disk is the server's")
    pages = studio.store.query_one("PRAGMA page_count")[0]
    studio.store.conn.execute(f"PRAGMA max_page_count = {pages}")
    # the request threads open their own connections: hold them to the same limit
    real_connect = type(studio.store)._connect

    def limited(self):
        conn = real_connect(self)
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    type(studio.store)._connect = limited
    studio.store._local = threading.local()
    try:
        statuses = []
        for oid in ids:
            r = api_client.post("/api/v1/feedback", json={"output_id": oid, "rating": "up", "comment": "c" * 1999})
            statuses.append(r.status_code)
            if r.status_code == 507:
                assert_disk_full(r)
    finally:
        type(studio.store)._connect = real_connect
        studio.store._local = threading.local()
    assert set(statuses) <= {200, 507} and 507 in statuses, statuses
    stored = studio.store.query_one("SELECT COUNT(*) AS n FROM ratings")["n"]
    assert stored == statuses.count(200)
    assert studio.store.query_one("PRAGMA integrity_check")[0] == "ok"
