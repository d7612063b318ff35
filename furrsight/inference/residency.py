"""GPU residency: at most ``max_large`` large models loaded at once (one GPU, one large model).

Models are loaded on demand through ``acquire``; before a large model loads, the least recently
used other large model is unloaded. ``unload_idle`` drops models unused for a while. The
bookkeeping is plain Python, so it is testable on a CPU-only machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class Loadable(Protocol):
    def unload(self) -> None: ...


class Residency:
    def __init__(self, max_large: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_large = max_large
        self.clock = clock
        self._lock = threading.RLock()
        self._models: dict[str, tuple[Any, bool]] = {}  # key -> (model, large)
        self._last_used: dict[str, float] = {}
        self.events: list[str] = []  # "load KEY" / "unload KEY", for the UI and tests

    def acquire(self, key: str, loader: Callable[[], Any], large: bool = False) -> Any:
        """The model for ``key``, loading it (after making room) when it is not resident."""
        with self._lock:
            if key not in self._models:
                if large:
                    self._make_room()
                self._models[key] = (loader(), large)
                self.events.append(f"load {key}")
            self._last_used[key] = self.clock()
            return self._models[key][0]

    def _make_room(self) -> None:
        large = sorted((self._last_used[k], k) for k, (_, big) in self._models.items() if big)
        while len(large) >= self.max_large:
            _, key = large.pop(0)
            self.release(key)

    def release(self, key: str) -> None:
        with self._lock:
            entry = self._models.pop(key, None)
            self._last_used.pop(key, None)
            if entry is not None:
                unload = getattr(entry[0], "unload", None)
                if callable(unload):
                    unload()
                self.events.append(f"unload {key}")

    def unload_idle(self, max_idle_s: float) -> list[str]:
        with self._lock:
            now = self.clock()
            idle = [k for k, t in self._last_used.items() if now - t > max_idle_s]
            for key in idle:
                self.release(key)
            return idle

    def peek(self, key: str) -> Any:
        """The resident model for ``key``, or None (does not count as a use)."""
        with self._lock:
            entry = self._models.get(key)
            return None if entry is None else entry[0]

    def resident(self) -> list[str]:
        with self._lock:
            return sorted(self._models)


# The process's residency manager (web and GPU worker each have one). Tests build their own.
RESIDENCY = Residency()
