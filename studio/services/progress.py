"""Generations in flight: how far each has got, and a way to stop them — what A1111's
/progress and /interrupt report and do, per person (an admin may stop anyone's)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from studio.services.auth import User


@dataclass
class Running:
    user: str
    total: int
    stop_event: threading.Event
    step: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0

    @property
    def eta_s(self) -> float:
        """Seconds left at the pace so far (0 before the first step)."""
        if not self.step:
            return 0.0
        return (time.monotonic() - self.started) / self.step * (self.total - self.step)


class RunningWork:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[Running] = []

    @contextmanager
    def track(self, user: User, total: int, stop_event: threading.Event) -> Iterator[Running]:
        item = Running(user.name, total, stop_event)
        with self._lock:
            self._running.append(item)
        try:
            yield item
        finally:
            with self._lock:
                self._running.remove(item)

    def newest(self, user: User) -> Running | None:
        """The caller's newest generation in flight (an admin sees anyone's)."""
        with self._lock:
            mine = [r for r in self._running if user.is_admin or r.user == user.name]
        return mine[-1] if mine else None

    def interrupt(self, user: User) -> int:
        """Stop the caller's generations in flight (an admin stops all); how many were asked to stop."""
        with self._lock:
            mine = [r for r in self._running if user.is_admin or r.user == user.name]
        for r in mine:
            r.stop_event.set()
        return len(mine)
