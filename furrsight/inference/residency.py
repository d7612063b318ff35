"""Model residency: which models a process holds, on which device, and for how long.

A ``Residency`` loads models on demand through ``acquire``. Its ``device`` decides where they may
live: ``"gpu"`` (the GPU worker: where the device probe, ``furrsight.inference.devices``, says CUDA
works, ONNX sessions ask for CUDA then the CPU and llama.cpp offloads every layer; elsewhere CPU
sessions and no layer, quietly) or ``"cpu"`` (the web process: CPU sessions only, no layer
offloaded — the web process never takes GPU memory, whatever a caller would like). At most
``max_large`` large models are resident at once (one GPU, one large model): before a large model
loads, the least recently used other large model is unloaded. ``IdleSweeper`` unloads models
unused for longer than the idle timeout; a model in the middle of a call is never idle. The
bookkeeping is plain Python, so it is testable on a CPU-only machine.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from furrsight.inference import devices

Device = Literal["gpu", "cpu"]
logger = logging.getLogger(__name__)


class Residency:
    def __init__(self, max_large: int = 1, clock: Callable[[], float] = time.monotonic, device: Device = "gpu") -> None:
        self.max_large = max_large
        self.clock = clock
        self.device: Device = device
        self._lock = threading.RLock()
        self._models: dict[str, tuple[Any, bool]] = {}  # key -> (model, large)
        self._last_used: dict[str, float] = {}
        self.events: list[str] = []  # "load KEY" / "unload KEY", for the UI and tests

    @property
    def providers(self) -> list[str]:
        """The ONNX execution providers a session of this process may ask for, in order."""
        return list(devices.CPU_PROVIDERS) if self.device == "cpu" else devices.onnx_providers()

    @property
    def gpu_layers(self) -> int:
        """llama.cpp layers to offload: all of them on the GPU worker where llama.cpp has a GPU,
        none in a CPU-only process."""
        return 0 if self.device == "cpu" else devices.gguf_layers()

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

    def release_all(self) -> None:
        """Unload every model now: at the end of a process, while it can still say what goes
        wrong (llama.cpp's own finalizers, left to interpreter shutdown, print a traceback once
        the standard streams are closed)."""
        with self._lock:
            for key in list(self._models):
                self.release(key)

    def _idle_for(self, key: str, now: float) -> float:
        idle = now - self._last_used[key]
        model_idle = getattr(self._models[key][0], "idle_for", None)  # a model knows its own calls
        return min(idle, model_idle()) if callable(model_idle) else idle

    def unload_idle(self, max_idle_s: float) -> list[str]:
        """Unload every model unused for more than ``max_idle_s`` seconds; returns their keys."""
        with self._lock:
            now = self.clock()
            idle = [k for k in list(self._models) if self._idle_for(k, now) > max_idle_s]
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


class IdleSweeper:
    """A daemon thread that unloads a residency's models once they have been idle for
    ``max_idle_s`` seconds (setting ``search.idle_unload_s``; 0 turns it off). It looks every
    quarter of the timeout (at most every 30 s), so a model goes within 1.25 x the timeout."""

    def __init__(self, residency: Residency, max_idle_s: float, interval: float | None = None) -> None:
        self.residency = residency
        self.max_idle_s = max_idle_s
        self.interval = interval or max(0.05, min(30.0, max_idle_s / 4))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> IdleSweeper:
        if self.max_idle_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="model-idle-sweeper", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                for key in self.residency.unload_idle(self.max_idle_s):
                    logger.info("unloaded %s: idle for more than %s s", key, self.max_idle_s)
            except Exception:  # a failing unload must not end the sweeping
                logger.exception("idle unload failed")


# The GPU worker's residency (the web process builds its own CPU-only one in ``app.py``), emptied
# at exit in any process that used it (a worker, a benchmark, a command that analyses in-process).
RESIDENCY = Residency()
atexit.register(RESIDENCY.release_all)
