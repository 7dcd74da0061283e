"""Queries of the `changes` table (its one owner): a counter per topic that the pages watch, kept in
the database when several replicas share it (studio/services/changes.py)."""

from __future__ import annotations

from studio.store.db import Store


def bump(store: Store, topics: tuple[str, ...]) -> None:
    with store.transaction() as c:
        for topic in sorted(topics):  # one order, so two replicas bumping together cannot deadlock
            c.execute("INSERT INTO changes (topic, version) VALUES (?, 1) "
                      "ON CONFLICT (topic) DO UPDATE SET version = changes.version + 1", (topic,))


def versions(store: Store) -> dict[str, int]:
    return {r["topic"]: int(r["version"]) for r in store.query("SELECT topic, version FROM changes")}
