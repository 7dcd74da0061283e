"""The same store on PostgreSQL (`--database-url postgresql://…`), for several studio replicas over
one database.

The table owners write one SQL, SQLite's, and this module runs it through psycopg. We chose that
over SQLAlchemy Core because the SQL is small and plain (about sixty statements) and a rewrite of
every owner into expression objects would change each of them for no gain on SQLite, the default.
`to_postgres` translates the few things that differ, each a rule below, outside string literals:

    ?                 → %s          psycopg's placeholder (a literal % is doubled)
    x IS ?            → x IS NOT DISTINCT FROM %s     (IS NOT ? → IS DISTINCT FROM)
    LIKE              → ILIKE       SQLite's LIKE ignores ASCII case; the owners rely on that
    rowid             → ctid        only ever a tie-break after a timestamp in ORDER BY
    user              → "user"      a reserved word in PostgreSQL (qualified `r.user` is fine)
    INTEGER / REAL    → BIGINT / DOUBLE PRECISION   in migrations: seeds and pids, exact floats

Rows read like `sqlite3.Row`: by name, by position, and `dict(row)`. Every write runs in a
transaction that commits before `transaction()` returns (PostgreSQL's default synchronous commit
makes an acknowledged write durable). Migrations run under an advisory lock, so replicas that start
together apply each one once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.adapt import Dumper

from studio.store.db import Store, _split_sql
from studio.store.migrations import MIGRATIONS

MIGRATION_LOCK = 7_867_301  # pg_advisory_xact_lock key: one migrator at a time
_LITERAL = re.compile(r"('(?:[^']|'')*')")
_RULES = [
    (re.compile(r"%"), "%%"),
    (re.compile(r"\?"), "%s"),
    (re.compile(r"\bIS\s+NOT\s+%s", re.I), "IS DISTINCT FROM %s"),
    (re.compile(r"\bIS\s+%s", re.I), "IS NOT DISTINCT FROM %s"),
    (re.compile(r"\bLIKE\b"), "ILIKE"),
    (re.compile(r"\browid\b"), "ctid"),
    (re.compile(r'(?<![\w."])user(?![\w"])'), '"user"'),
]
_DDL_RULES = [(re.compile(r"\bINTEGER\b"), "BIGINT"), (re.compile(r"\bREAL\b"), "DOUBLE PRECISION")]


@lru_cache(maxsize=1024)
def to_postgres(sql: str, ddl: bool = False) -> str:
    """One statement of the owners' SQL, as PostgreSQL reads it (see the module's table)."""
    parts = _LITERAL.split(sql)
    for i in range(0, len(parts), 2):  # even parts are outside string literals
        for pattern, repl in _RULES + (_DDL_RULES if ddl else []):
            parts[i] = pattern.sub(repl, parts[i])
    for i in range(1, len(parts), 2):
        parts[i] = parts[i].replace("%", "%%")
    return "".join(parts)


class Row(dict):
    """A row read by column name or by position, like sqlite3.Row."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int):
            return list(self.values())[key]
        return super().__getitem__(key)


def _rows(cursor: psycopg.Cursor) -> Any:
    names = [c.name for c in cursor.description or ()]
    return lambda values: Row(zip(names, values, strict=True))


class _BoolAsInt(Dumper):
    """SQLite stores booleans as 0/1 in INTEGER columns; so does this schema."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class _Connection:
    """What `transaction()` yields: `execute(sql, params)` in the owners' dialect."""

    def __init__(self, conn: psycopg.Connection):
        self._conn = conn

    def execute(self, sql: str, params: tuple | list | dict = ()) -> psycopg.Cursor:
        return self._conn.execute(to_postgres(sql), params if isinstance(params, dict) else tuple(params))

    def executemany(self, sql: str, rows: list) -> psycopg.Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(to_postgres(sql), [r if isinstance(r, dict) else tuple(r) for r in rows])
        return cursor


class PostgresStore(Store):
    """The store on a PostgreSQL database: `query`, `query_one` and `close` are Store's, over the
    connection and transaction below."""

    dialect = "postgresql"

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()
        self.migrate()

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.url)})"

    # -- connections --------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection:
        # No prepared statements (prepare_threshold=None): a prepared `SELECT *` fails once another
        # replica's migration adds a column. TCP keepalives: a dead server is noticed in about a minute.
        conn = psycopg.connect(self.url, autocommit=True, row_factory=_rows, connect_timeout=10,
                               prepare_threshold=None, keepalives=1, keepalives_idle=30,
                               keepalives_interval=10, keepalives_count=3)
        conn.adapters.register_dumper(bool, _BoolAsInt)
        return conn

    @property
    def raw(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:  # a restarted server: connect again
            conn = self._connect()
            self._local.conn = conn
        return conn

    @property
    def conn(self) -> _Connection:
        return _Connection(self.raw)

    @contextmanager
    def transaction(self) -> Iterator[_Connection]:
        """BEGIN … COMMIT; rolls back on any exception."""
        conn = self.raw
        with conn.transaction():
            yield _Connection(conn)

    # -- schema -------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        row = self.raw.execute("SELECT version FROM studio_schema").fetchone()
        return int(row[0]) if row else 0

    def migrate(self) -> int:
        """Apply the migrations the database has not seen yet, each in its own transaction, under
        an advisory lock (another replica starting at the same moment waits, then applies nothing)."""
        conn = self.raw
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS studio_schema (version INTEGER NOT NULL)")
            if conn.execute("SELECT version FROM studio_schema").fetchone() is None:
                conn.execute("INSERT INTO studio_schema (version) VALUES (0)")
        while True:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                current = int(conn.execute("SELECT version FROM studio_schema").fetchone()[0])
                if current > len(MIGRATIONS):
                    raise RuntimeError(
                        f"The database at {redact_url(self.url)} has schema version {current}, newer than "
                        f"this studio knows ({len(MIGRATIONS)}). Upgrade AIGC Studio or use another database."
                    )
                if current == len(MIGRATIONS):
                    return current
                for statement in _split_sql(MIGRATIONS[current]):
                    conn.execute(to_postgres(statement, ddl=True).replace("%%", "%"))
                conn.execute("UPDATE studio_schema SET version = %s", (current + 1,))

    def tables(self) -> set[str]:
        rows = self.query("SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()")
        return {r["name"] for r in rows} - {"studio_schema"}


def redact_url(url: str) -> str:
    """A database URL with its password hidden, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
