"""kill -9 in the middle of a streamed upload, then a restart: nothing is left in tmp/ and the
database is intact."""

from __future__ import annotations

import http.client
import signal
import sqlite3

import httpx
import pytest

from tests.waiting import wait_for

BOUNDARY = "studio-test-boundary"


def form_head(name: str) -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\ntext\r\n"
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n"
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n"
        "Content-Type: text/plain\r\n\r\n"
    ).encode()


@pytest.mark.slow
def test_kill_9_during_a_streamed_upload_then_restart_leaves_tmp_empty(live_studio):
    live = live_studio("--offline")
    data = live.data_dir
    tmp = data / "tmp"

    # 1. A slow upload: the headers promise 8 MB, the first 256 KB arrive, then the studio dies.
    head = form_head("half an upload")
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    conn.putrequest("POST", "/api/v1/datasets")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    conn.putheader("Content-Length", str(len(head) + 8 * 1024 * 1024))
    conn.endheaders()
    conn.send(head + b"a line of text\n" * (256 * 1024 // 15))

    def partial_parts():
        return [p for p in tmp.glob("*/*.part") if p.stat().st_size > 0]

    wait_for(partial_parts, what="the upload to reach the disk")
    live.proc.send_signal(signal.SIGKILL)
    live.proc.wait()
    conn.close()
    assert partial_parts(), "the kill should leave the half upload behind"

    # 2. Restart on the same data dir: the leftovers are swept before the studio serves.
    again = live_studio("--offline", data_dir=data)
    assert not [p for p in tmp.rglob("*") if not p.is_dir()], "no file is left in tmp/"
    assert [p.name for p in tmp.iterdir()] in ([], ["gradio"])  # Gradio's (empty) cache folder, made anew
    db = sqlite3.connect(data / "studio.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 0
    finally:
        db.close()
    assert list((data / "datasets").iterdir()) == []

    # 3. The restarted studio works (UI and uploads), and a finished upload leaves nothing in tmp/.
    assert httpx.get(again.url + "/", timeout=30).status_code == 200
    r = httpx.post(again.url + "/api/v1/datasets", data={"kind": "text", "name": "after"},
                   files={"file": ("a.txt", b"one document\n\nanother one\n", "text/plain")}, timeout=60)
    assert r.status_code == 201, r.text
    assert [p.name for p in tmp.iterdir() if p.name != "gradio"] == []
