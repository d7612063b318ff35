"""How long a loaded model has been idle: the residency's idle sweeper asks each model, so a model
held across a long job (an embedding run, a generation) is idle only between its calls."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator


class Usage:
    """When a model was last used, and whether a call is running now (never idle then)."""

    def __init__(self) -> None:
        self._busy = 0
        self._last = time.monotonic()
        self._usage_lock = threading.Lock()

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        with self._usage_lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._usage_lock:
                self._busy -= 1
                self._last = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last call ended (0 while a call runs)."""
        with self._usage_lock:
            return 0.0 if self._busy else time.monotonic() - self._last
