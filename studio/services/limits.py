"""Admission for a shared studio: how much one request may ask for, and how many requests wait.

Admins are not limited by size; everyone else is held to `RequestLimits`. Generation requests
pass through one fair gate: at most `max_running` at a time, at most `max_per_user` per person
in flight, and at most `max_queue` waiting — past that the answer says how busy it is.

`Admission` is the one point every generation passes. It lives in the generation services, not in
the doors (REST routes, page handlers, the arena, the OpenAI/A1111 dialects), so a new door cannot
skip it; a service calls `require()` right before its engine runs, so a path that forgot to admit
fails loudly in the tests instead of running unchecked."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from studio.config import RequestLimits
from studio.services.auth import User
from studio.services.errors import Busy, Invalid, StudioError


class TooManyRequests(StudioError):
    status, code = 429, "too_many_requests"


# (kind, field) → (limit attribute, what it means)
CHECKS = {
    ("text", "max_new_tokens"): ("max_new_tokens", "new tokens"),
    ("text", "num_outputs"): ("text_outputs", "variations"),
    ("image", "steps"): ("image_steps", "steps"),
    ("image", "num_outputs"): ("image_outputs", "images"),
    ("image", "grid_cells"): ("image_grid_cells", "grid cells"),
    ("gan", "num_outputs"): ("gan_outputs", "images"),
    ("gan", "frames"): ("gan_frames", "frames"),
}


def enforce(limits: RequestLimits, user: User, kind: str, params: Mapping) -> None:
    """Raise a 422 naming the limit when a non-admin asks for more than it allows."""
    if user.is_admin:
        return
    for (k, field), (attr, what) in CHECKS.items():
        value = params.get(field)
        if k == kind and value is not None and value > getattr(limits, attr):
            raise Invalid(f"{field}: at most {getattr(limits, attr)} {what} per request on this shared studio.")
    if kind == "image" and params.get("width") and params.get("height"):
        if params["width"] * params["height"] > limits.image_pixels:
            raise Invalid(f"width × height: at most {limits.image_pixels:,} pixels per image on this shared studio.")
    if kind == "speech" and len(params.get("text") or "") > limits.speech_chars:
        raise Invalid(f"text: at most {limits.speech_chars:,} characters per request on this shared studio.")
    if kind == "text" and len(params.get("score_text") or "") > limits.score_chars:
        raise Invalid(f"text: at most {limits.score_chars:,} characters can be scored per request on this shared "
                      "studio; paste a shorter passage.")


class RequestGate:
    """FIFO admission: `with gate.enter(user):` waits its turn or refuses with a clear message."""

    def __init__(self, max_running: int = 2, max_per_user: int = 2, max_queue: int = 32):
        self.max_running = max_running
        self.max_per_user = max_per_user
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._running = 0
        self._waiting: deque[object] = deque()
        self._per_user: dict[str, int] = {}

    def position(self, ticket: object) -> int:
        with self._cond:
            return list(self._waiting).index(ticket) + 1 if ticket in self._waiting else 0

    @contextmanager
    def enter(self, user: User, timeout_s: float = 600) -> Iterator[None]:
        ticket = object()
        with self._cond:
            mine = self._per_user.get(user.name, 0)
            if mine >= self.max_per_user and not user.is_admin:
                raise TooManyRequests(
                    f"You already have {mine} requests running or waiting; wait for them to finish."
                )
            if len(self._waiting) >= self.max_queue:
                raise Busy(f"The studio is busy: {len(self._waiting)} requests are waiting. Try again shortly.")
            self._per_user[user.name] = mine + 1
            self._waiting.append(ticket)
            try:
                ok = self._cond.wait_for(
                    lambda: self._waiting[0] is ticket and self._running < self.max_running, timeout=timeout_s
                )
                if not ok:
                    raise Busy(f"The studio is busy (you were number {self.position(ticket)} in the queue). "
                               "Try again shortly.")
            except BaseException:
                self._waiting.remove(ticket)
                self._per_user[user.name] -= 1
                self._cond.notify_all()
                raise
            self._waiting.popleft()
            self._running += 1
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._per_user[user.name] -= 1
                if not self._per_user[user.name]:
                    del self._per_user[user.name]
                self._cond.notify_all()


class Admission:
    """`with admission.admit(user, kind, sizes):` checks the caller's size limits (422 naming the
    limit), then takes a fair turn at the gate (429 when busy) for the duration of the block."""

    def __init__(self, limits: RequestLimits, gate: RequestGate):
        self.limits = limits
        self.gate = gate
        self._local = threading.local()  # how deep this thread is inside admitted blocks

    def check(self, user: User, kind: str, sizes: Mapping) -> None:
        """The size limits alone: a form can be refused before the page says "Generating…"."""
        enforce(self.limits, user, kind, sizes)

    @contextmanager
    def admit(self, user: User, kind: str, sizes: Mapping) -> Iterator[None]:
        enforce(self.limits, user, kind, sizes)
        with self.gate.enter(user):
            self._local.depth = getattr(self._local, "depth", 0) + 1
            try:
                yield
            finally:
                self._local.depth -= 1

    def require(self) -> None:
        """Called by a service right before its engine runs."""
        if not getattr(self._local, "depth", 0):
            raise RuntimeError("generation without admission: wrap it in Admission.admit()")
