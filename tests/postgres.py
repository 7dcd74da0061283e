"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` binaries, a cluster in a
temporary folder, listening on a unix socket only (no TCP port), stopped and removed afterwards.

As root, the server runs as the `postgres` system user (PostgreSQL refuses to run as root).
Without the binaries the tests that need it are skipped locally and fail under CI=true, saying
how to install them. `fsync=off` keeps the tests fast; a studio's own server keeps the default.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class PostgresServer:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        if self.bin is None or not (self.bin / "initdb").exists():
            why = "PostgreSQL is not installed: run 'sudo apt-get install postgresql' for these tests"
            if os.environ.get("CI"):
                pytest.fail(why)
            pytest.skip(why)
        self.root = Path(tempfile.mkdtemp(prefix="studio-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.socket_dir.mkdir()
        self.as_user: list[str] = []
        self.owner = pwd.getpwuid(os.getuid()).pw_name
        if os.getuid() == 0:
            self.owner = "postgres"
            entry = pwd.getpwnam("postgres")
            self.root.chmod(0o755)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self.as_user = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "studio", "--no-sync", "-E", "UTF8")
        options = (f"-k {self.socket_dir} -c listen_addresses='' -c max_connections=300 -c fsync=off "
                   "-c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "start")

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True,
                                cwd=self.root, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}{result.stderr}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://studio@/{dbname}?host={self.socket_dir}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
