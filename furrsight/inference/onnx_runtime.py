"""The ONNX adapter: a session asking for the providers it is given (by default CUDA then the CPU
where the device probe says CUDA will work, else the CPU only; the CPU only in the web process),
loaded lazily under a lock, reporting the provider it really got, and how long it has been idle."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from furrsight.inference import devices
from furrsight.inference.usage import Usage
from furrsight.metrics.instruments import INFERENCE_SECONDS

WANTED = devices.CUDA_PROVIDERS
CPU_ONLY = devices.CPU_PROVIDERS
logger = logging.getLogger(__name__)


class OnnxModel(Usage):
    def __init__(self, path: Path, providers: list[str] | None = None, threads: int = 0, name: str = "") -> None:
        super().__init__()
        self.path = path
        self.name = name or path.stem  # the metrics' model label
        self.wanted = list(providers) if providers else devices.onnx_providers()
        self.threads = threads
        self._session: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.log_severity_level = 3
                # no busy-waiting: decoding of the next batch runs beside inference, and spinning
                # intra-op threads starve it (measured: the embed job 3x slower with spinning)
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                if self.threads:
                    options.intra_op_num_threads = self.threads
                if "CUDAExecutionProvider" in self.wanted:
                    devices.prepare_onnx_cuda()  # the CUDA libraries of the nvidia-* wheels, loaded first
                self._session = onnxruntime.InferenceSession(str(self.path), options, providers=self.wanted)
                got = self._session.get_providers()[0]
                if got != self.wanted[0]:  # asked for CUDA where the probe said it works: worth a warning
                    logger.warning("%s asked for %s, got %s", self.path.name, self.wanted[0], got)
            return self._session

    def unload(self) -> None:
        with self._lock:
            self._session = None

    @property
    def loaded(self) -> bool:
        return self._session is not None

    @property
    def provider(self) -> str:
        """The provider doing the work (the first one the session really got)."""
        return str(self.load().get_providers()[0])

    @property
    def input_name(self) -> str:
        return str(self.load().get_inputs()[0].name)

    @property
    def input_type(self) -> str:
        return str(self.load().get_inputs()[0].type)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.load().get_outputs()]

    def run(self, batch: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run one batch (blocking: call it in a thread); returns outputs by name."""
        session = self.load()
        names = outputs or self.output_names
        with self.in_use(), INFERENCE_SECONDS.labels(self.name).time():
            values = session.run(names, {self.input_name: batch})
        return dict(zip(names, values, strict=True))
