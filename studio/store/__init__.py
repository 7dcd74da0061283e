"""SQLite store: schema, migrations and queries. Files live beside it in the data dir."""

from studio.store.db import Store, new_id, utcnow

__all__ = ["Store", "new_id", "utcnow"]
