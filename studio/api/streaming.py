"""Run a blocking service call in a worker thread and read its progress as an async stream.

A door that streams (server-sent events) must still answer a refusal — over the limits, busy,
unknown model — as a plain HTTP error, so the stream only starts once the call has produced its
first update (it has passed admission by then) or has finished."""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.concurrency import run_in_threadpool

UPDATE, DONE, ERROR = "update", "done", "error"


class BackgroundCall:
    """`call(emit, stop_event)` runs in a thread; `emit(value)` queues an update, and `stop_event` is
    set when the reader goes away (a client that disconnects stops the work). Events are (kind, value)."""

    def __init__(self, call: Callable[[Callable[[Any], None], threading.Event], Any]):
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stop_event = threading.Event()

        def run() -> None:
            try:
                self._events.put((DONE, call(lambda value: self._events.put((UPDATE, value)), self.stop_event)))
            except BaseException as exc:  # handed to the door, which maps it to an answer
                self._events.put((ERROR, exc))

        threading.Thread(target=run, daemon=True, name="stream-call").start()

    async def next(self) -> tuple[str, Any]:
        return await run_in_threadpool(self._events.get)

    async def events(self, first: tuple[str, Any]) -> AsyncIterator[tuple[str, Any]]:
        """The first event (already read), then the rest until DONE or ERROR."""
        event = first
        try:
            while True:
                yield event
                if event[0] != UPDATE:
                    return
                event = await self.next()
                while event[0] == UPDATE and not self._events.empty():  # skip to the newest update
                    newer = self._events.get_nowait()
                    if newer[0] != UPDATE:
                        yield event
                        event = newer
                        break
                    event = newer
        finally:
            self.stop_event.set()
