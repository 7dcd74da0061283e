"""One change signal for the whole studio: a counter per topic, bumped by the services when
something a list shows is created, renamed, deleted, finished or rated. A page compares the
counters it last drew with the current ones (a dict read, no query) and redraws only what changed,
so what one tab makes appears in every other tab without a reload.

Replicas on one PostgreSQL database share the counters through its `changes` table, so what is
made through one replica appears in the pages served by the others; a replica reads the table at
most every `SHARED_TTL_S` (its own bumps show at once)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from studio.store import changes as table

# What a counter stands for; a list declares the topics it shows.
MODELS = "models"  # trained models, adapters, LoRAs, GANs, reward models (added, renamed, deleted)
DATASETS = "datasets"  # uploaded or generated datasets (added, deleted)
JOBS = "jobs"  # training jobs (queued, finished, failed, cancelled)
RATINGS = "ratings"  # thumbs and arena votes
EXPERIMENTS = "experiments"  # A/B experiments (started, stopped, decided, promoted)
SETTINGS = "settings"  # admin settings (precision, content filter, default models)
TOPICS = (MODELS, DATASETS, JOBS, RATINGS, EXPERIMENTS, SETTINGS)


log = logging.getLogger("studio.changes")
SHARED_TTL_S = 0.5


class Changes:
    """Monotonic counters per topic; safe to bump from any thread (the job monitor, handlers). In
    memory, or in the store's `changes` table when given a store that replicas share."""

    def __init__(self, shared=None) -> None:
        self._counts = dict.fromkeys(TOPICS, 0)
        self._lock = threading.Lock()
        self._shared = shared  # a Store, or None
        self._read_at = -SHARED_TTL_S
        self._watchers: list[tuple[str, Callable[[], None]]] = []
        self._watching: threading.Thread | None = None
        self._closed = threading.Event()

    def watch(self, topic: str, callback: Callable[[], None]) -> None:
        """Call `callback` when another replica bumps `topic` (checked every second; in memory
        there are no other replicas, and nothing is called)."""
        if self._shared is None:
            return
        self._watchers.append((topic, callback))
        if self._watching is None:
            self._watching = threading.Thread(target=self._watch, name="changes-watch", daemon=True)
            self._watching.start()

    def close(self) -> None:
        """Stop watching (the studio closes)."""
        self._closed.set()

    def _watch(self) -> None:
        seen = self.version()
        while not self._closed.wait(1.0):
            try:
                now = self.version()
            except Exception:  # a database restart: try again next second
                log.warning("could not read the change counters", exc_info=True)
                continue
            moved = {t for t, a, b in zip(TOPICS, seen, now, strict=True) if a != b}
            seen = now
            for topic, callback in self._watchers:
                if topic in moved:
                    try:
                        callback()
                    except Exception:
                        log.exception("a change watcher failed")
        self._shared.close()  # this thread's connection

    def bump(self, *topics: str) -> None:
        for topic in topics:
            if topic not in self._counts:
                raise ValueError(f"Unknown change topic {topic!r}; known: {', '.join(TOPICS)}")
        if self._shared is not None:
            try:
                table.bump(self._shared, tuple(set(topics)))
            except Exception:  # what changed is saved already; the pages catch up at the next bump
                log.warning("could not bump the change counters %s", topics, exc_info=True)
            self._read_at = -SHARED_TTL_S  # read again on the next look
            return
        with self._lock:
            for topic in topics:
                self._counts[topic] += 1

    def version(self, *topics: str) -> tuple[int, ...]:
        """The counters of `topics` (all topics when none are given), to compare with a later call."""
        if self._shared is not None and time.monotonic() - self._read_at >= SHARED_TTL_S:
            counts = dict.fromkeys(TOPICS, 0) | table.versions(self._shared)
            with self._lock:
                self._counts, self._read_at = counts, time.monotonic()
        return tuple(self._counts[t] for t in (topics or TOPICS))
