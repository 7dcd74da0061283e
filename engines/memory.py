"""Keeps loaded models within a memory budget.

Models are entries keyed by id. Getting an entry that is not loaded runs its loader; when the new
entry would push the total over the budget, the least recently used entries are unloaded first.
An entry larger than the whole budget is still loaded (alone) rather than refused.
"""

from __future__ import annotations

import gc
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class _Entry:
    value: Any
    size: int
    unload: Callable[[Any], None] | None


def module_bytes(obj: Any) -> int:
    """Bytes of parameters + buffers of a torch module, a pipeline's modules, or 0 if unknown."""
    import torch

    modules: list[torch.nn.Module] = []
    if isinstance(obj, torch.nn.Module):
        modules = [obj]
    elif hasattr(obj, "components"):  # diffusers pipeline
        modules = [m for m in obj.components.values() if isinstance(m, torch.nn.Module)]
    elif isinstance(obj, tuple | list):
        modules = [m for m in obj if isinstance(m, torch.nn.Module)]
    elif hasattr(obj, "model") and isinstance(obj.model, torch.nn.Module):
        modules = [obj.model]
    seen: set[int] = set()
    total = 0
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.numel() * t.element_size()
    return total


class MemoryManager:
    def __init__(self, budget_bytes: int):
        self.budget_bytes = int(budget_bytes)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.RLock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.load_counts: Counter[str] = Counter()  # how often each key was loaded (tests, stats)
        self.evictions: list[str] = []  # keys in the order they were evicted

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries.values())

    def loaded(self) -> list[str]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    def is_loaded(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def peek(self, key: str) -> Any | None:
        """The loaded value under `key` (None when not loaded), without counting as a use."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry.value

    def get(
        self,
        key: str,
        loader: Callable[[], Any],
        *,
        size_bytes: int | Callable[[Any], int] | None = None,
        unload: Callable[[Any], None] | None = None,
    ) -> Any:
        """Return the loaded value for `key`, loading it (and evicting others) if needed."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key].value
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one loader per key at a time; other keys load in parallel
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key].value
            if isinstance(size_bytes, int):
                self._make_room(size_bytes)
            value = loader()
            if size_bytes is None:
                size = module_bytes(value)
            elif callable(size_bytes):
                size = int(size_bytes(value))
            else:
                size = int(size_bytes)
            with self._lock:
                self._make_room(size)
                self._entries[key] = _Entry(value, size, unload)
                self.load_counts[key] += 1
            return value

    def evict(self, key: str) -> bool:
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self.evictions.append(key)
        if entry.unload is not None:
            entry.unload(entry.value)
        del entry
        gc.collect()
        _empty_device_cache()
        return True

    def clear(self) -> None:
        for key in self.loaded():
            self.evict(key)

    def _make_room(self, incoming: int) -> None:
        while True:
            with self._lock:
                if not self._entries or self.used_bytes + incoming <= self.budget_bytes:
                    return
                oldest = next(iter(self._entries))
            self.evict(oldest)


def _empty_device_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # pragma: no cover - best effort
        pass
