"""Every store test runs on both databases the studio supports: SQLite (the default) and
PostgreSQL (a throwaway server, tests/postgres.py)."""

import pytest

from studio.store import open_store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(None, tmp_path / "studio.db")
    else:
        s = open_store(request.getfixturevalue("postgres").new_database(), tmp_path / "unused.db")
    yield s
    s.close()
