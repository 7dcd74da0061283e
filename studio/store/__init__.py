"""The store: schema, migrations and queries, on SQLite (default) or PostgreSQL. Files live
beside it in the data dir."""

import sqlite3

import psycopg

from studio.store.db import Store, new_id, open_store, utcnow

# What a write that breaks a constraint (a missing reference, a duplicate) raises on either database.
IntegrityError = (sqlite3.IntegrityError, psycopg.IntegrityError)

__all__ = ["IntegrityError", "Store", "new_id", "open_store", "utcnow"]
