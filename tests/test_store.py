import sqlite3

import pytest

from studio.store import Store, new_id, utcnow
from studio.store.migrations import MIGRATIONS


def test_empty_db_gets_the_whole_schema(tmp_path):
    store = Store(tmp_path / "studio.db")
    assert store.schema_version == len(MIGRATIONS)
    assert {"outputs", "ratings", "datasets", "jobs", "adapters", "comparisons", "api_tokens"} <= store.tables()
    assert store.query_one("PRAGMA journal_mode")[0] == "wal"
    assert store.query_one("PRAGMA foreign_keys")[0] == 1


def test_existing_db_is_migrated_forward_and_keeps_its_rows(tmp_path):
    path = tmp_path / "studio.db"
    # A database written by an older studio: only the first migration applied.
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0].split(";"):
        lines = [ln.split("--", 1)[0] for ln in statement.splitlines()]
        if "".join(lines).strip():
            conn.execute("\n".join(lines))
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO outputs (id, kind, prompt, model, created_at) VALUES ('o1', 'text', 'hi', 'm', ?)", (utcnow(),)
    )
    conn.commit()
    conn.close()

    store = Store(path)
    assert store.schema_version == len(MIGRATIONS)
    assert "api_tokens" in store.tables()
    assert store.query_one("SELECT prompt FROM outputs WHERE id = 'o1'")["prompt"] == "hi"
    # Opening again applies nothing twice.
    assert Store(path).schema_version == len(MIGRATIONS)


def test_newer_db_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "studio.db"
    Store(path).conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(RuntimeError, match="newer than this studio knows"):
        Store(path)


def test_failed_transaction_changes_nothing(tmp_path):
    store = Store(tmp_path / "studio.db")
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as c:
        c.execute("INSERT INTO outputs (id, kind, model, created_at) VALUES ('a', 'text', 'm', ?)", (utcnow(),))
        c.execute("INSERT INTO outputs (id, kind, model, created_at) VALUES ('b', 'nope', 'm', ?)", (utcnow(),))
    assert store.query("SELECT * FROM outputs") == []


def test_foreign_keys_are_enforced(tmp_path):
    store = Store(tmp_path / "studio.db")
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as c:
        c.execute(
            "INSERT INTO ratings (id, output_id, user, rating, created_at, updated_at) VALUES (?,?,?,?,?,?)",
            (new_id(), "missing", "u", "up", utcnow(), utcnow()),
        )
