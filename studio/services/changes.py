"""One change signal for the whole studio: a counter per topic, bumped by the services when
something a list shows is created, renamed, deleted, finished or rated. A page compares the
counters it last drew with the current ones (a dict read, no query) and redraws only what changed,
so what one tab makes appears in every other tab without a reload."""

from __future__ import annotations

import threading

# What a counter stands for; a list declares the topics it shows.
MODELS = "models"  # trained models, adapters, LoRAs, GANs, reward models (added, renamed, deleted)
DATASETS = "datasets"  # uploaded or generated datasets (added, deleted)
JOBS = "jobs"  # training jobs (queued, finished, failed, cancelled)
RATINGS = "ratings"  # thumbs and arena votes
EXPERIMENTS = "experiments"  # A/B experiments (started, stopped, decided, promoted)
TOPICS = (MODELS, DATASETS, JOBS, RATINGS, EXPERIMENTS)


class Changes:
    """Monotonic counters per topic; safe to bump from any thread (the job monitor, handlers)."""

    def __init__(self) -> None:
        self._counts = dict.fromkeys(TOPICS, 0)
        self._lock = threading.Lock()

    def bump(self, *topics: str) -> None:
        with self._lock:
            for topic in topics:
                if topic not in self._counts:
                    raise ValueError(f"Unknown change topic {topic!r}; known: {', '.join(TOPICS)}")
                self._counts[topic] += 1

    def version(self, *topics: str) -> tuple[int, ...]:
        """The counters of `topics` (all topics when none are given), to compare with a later call."""
        return tuple(self._counts[t] for t in (topics or TOPICS))
