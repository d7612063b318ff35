"""Which device each model runtime really uses on this machine, and why, in words.

One probe per process (cached): is there an NVIDIA driver with a GPU (``nvidia-smi``, its driver
version and the CUDA version it supports); does onnxruntime offer its CUDA provider, does the
driver support the CUDA it was built for, and do the CUDA and cuDNN runtime libraries load (from
the ``nvidia-*`` wheels that ``onnxruntime-gpu[cuda,cudnn]`` brings, or the system's); was
llama-cpp-python built with GPU offload. Sessions ask for CUDA only when this says it will work:
onnxruntime asked for CUDA without its libraries prints red errors on every session and falls
back anyway, so the CPU path is chosen here, quietly.

The GPU worker publishes its probe to ``<data>/runtime/devices.json``: the web process runs
sandboxed (systemd ``PrivateDevices=yes``) and could not see the GPU itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal

import msgspec

from furrsight.inference.nvidia import DRIVER_FOR_CUDA, Driver, cuda_major, driver_fix, nvidia_driver

logger = logging.getLogger(__name__)

Device = Literal["cuda", "cpu", "none"]
CUDA_PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]
CPU_PROVIDERS = ["CPUExecutionProvider"]
PIP_CUDA = "pip install 'onnxruntime-gpu[cuda,cudnn]' (the installer does this)"
LLAMA_CUDA = (
    "CMAKE_ARGS=-DGGML_CUDA=on pip install --force-reinstall --no-cache-dir llama-cpp-python "
    "(needs a CUDA toolkit; the installer does this where nvidia-smi finds a GPU)"
)
PUBLISHED = Path("runtime") / "devices.json"


class RuntimeDevice(msgspec.Struct, frozen=True, kw_only=True):
    runtime: str  # "onnx" / "gguf"
    device: Device  # "none": the runtime cannot run at all
    reason: str  # why, in words
    fix: str = ""  # what would put it on the GPU (empty when it is there, or nothing is to fix)

    @property
    def label(self) -> str:
        return {"cuda": "CUDA", "cpu": "CPU"}.get(self.device, "not available")

    @property
    def why(self) -> str:
        return f"on {self.reason}" if self.device == "cuda" else f"because {self.reason}"

    @property
    def words(self) -> str:
        """ "CPU, because no NVIDIA driver (nvidia-smi not found)", "CUDA, on NVIDIA …"."""
        return f"{self.label}, {self.why}"


class DeviceReport(msgspec.Struct, frozen=True, kw_only=True):
    driver: Driver
    onnx: RuntimeDevice
    gguf: RuntimeDevice


class Published(msgspec.Struct, frozen=True, kw_only=True):
    """A process's probe as it wrote it (the GPU worker's, read by the web process)."""

    report: DeviceReport
    pid: int
    at: float  # unix time


def _load_library(name: str, wheels: Path) -> str:
    """Load ``name`` as onnxruntime's ``preload_dlls()`` would (the ``nvidia-*`` wheels' copy
    first, then the system's search path); "" when it loaded, else what went wrong."""
    error = ""
    for path in sorted(wheels.glob(f"*/lib/{name}")):
        try:
            ctypes.CDLL(str(path))
            return ""
        except OSError as exc:
            error = str(exc)
    try:
        ctypes.CDLL(name)
        return ""
    except OSError as exc:
        error = error or str(exc)
    return f"{name} not found" if "cannot open shared object" in error else f"{name} does not load: {error}"


def onnx_device(driver: Driver) -> RuntimeDevice:
    try:
        import onnxruntime
    except ImportError as exc:
        return RuntimeDevice(runtime="onnx", device="none", reason=f"onnxruntime does not import: {exc}",
                             fix=PIP_CUDA)  # fmt: skip
    if driver.problem:
        return RuntimeDevice(runtime="onnx", device="cpu", reason=driver.problem, fix=driver_fix(driver))
    from onnxruntime.capi import build_and_package_info as build

    package = f"{getattr(build, 'package_name', 'onnxruntime')} {onnxruntime.__version__}"
    built_for = str(getattr(build, "cuda_version", ""))
    if not built_for or "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return RuntimeDevice(runtime="onnx", device="cpu", reason=f"{package} has no CUDA provider",
                             fix="pip uninstall onnxruntime; " + PIP_CUDA)  # fmt: skip
    need = cuda_major(built_for)
    if cuda_major(driver.cuda) < need:
        newer = DRIVER_FOR_CUDA.get(need)
        supports = driver.cuda or "(unknown)"
        return RuntimeDevice(
            runtime="onnx", device="cpu",
            reason=f"driver {driver.version} supports CUDA {supports}; {package} needs CUDA {need}",
            fix="update the NVIDIA driver" + (f" ({newer} or newer supports CUDA {need})" if newer else ""),
        )  # fmt: skip
    wheels = Path(onnxruntime.__file__).parent.parent / "nvidia"
    # what libonnxruntime_providers_cuda.so needs (readelf -d), and cuDNN, which it opens later
    for name in (f"libcublasLt.so.{need}", f"libcublas.so.{need}", "libcurand.so.10", f"libcudart.so.{need}",
                 "libcudnn.so.9"):  # fmt: skip
        if problem := _load_library(name, wheels):
            return RuntimeDevice(runtime="onnx", device="cpu", reason=problem, fix=PIP_CUDA)
    return RuntimeDevice(runtime="onnx", device="cuda",
                         reason=f"{driver.gpus[0]}, driver {driver.version} (CUDA {driver.cuda}), {package} "
                                f"with the CUDA {need} and cuDNN 9 libraries")  # fmt: skip


def gguf_device(driver: Driver) -> RuntimeDevice:
    # llama.cpp prints its back-end set-up to stderr unless its logger is quieted first
    quiet = logging.getLogger("llama-cpp-python")
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.ERROR)
    try:
        import llama_cpp
    except Exception as exc:  # a CUDA build without the CUDA libraries fails here with OSError
        return RuntimeDevice(runtime="gguf", device="none", reason=f"llama-cpp-python does not import: {exc}",
                             fix="pip install llama-cpp-python")  # fmt: skip
    if driver.problem:
        return RuntimeDevice(runtime="gguf", device="cpu", reason=driver.problem, fix=driver_fix(driver))
    package = f"llama-cpp-python {llama_cpp.__version__}"
    if not llama_cpp.llama_supports_gpu_offload():
        return RuntimeDevice(runtime="gguf", device="cpu", reason=f"{package} built without CUDA", fix=LLAMA_CUDA)
    reason = f"{driver.gpus[0]}, driver {driver.version}, {package} built with GPU offload"
    return RuntimeDevice(runtime="gguf", device="cuda", reason=reason)


_probed: list[DeviceReport] = []
_probe_lock = threading.Lock()


def probe() -> DeviceReport:
    """This process's devices, computed once (said once, at info level: no warnings for the CPU)."""
    with _probe_lock:
        if not _probed:
            driver = nvidia_driver()
            _probed.append(DeviceReport(driver=driver, onnx=onnx_device(driver), gguf=gguf_device(driver)))
            for runtime in (_probed[0].onnx, _probed[0].gguf):
                logger.info("%s models: %s", runtime.runtime.upper(), runtime.words)
        return _probed[0]


def onnx_providers() -> list[str]:
    """The providers a session of a GPU-capable process asks for: CUDA only where it will work."""
    return list(CUDA_PROVIDERS if probe().onnx.device == "cuda" else CPU_PROVIDERS)


def gguf_layers() -> int:
    """llama.cpp layers to offload: all of them where it has a GPU, else none."""
    return -1 if probe().gguf.device == "cuda" else 0


@functools.cache
def prepare_onnx_cuda() -> None:
    """Call onnxruntime's ``preload_dlls()`` once, before the first CUDA session: it loads the
    ``nvidia-*`` wheels' libraries (not on the linker's path) and registers the CUDA provider.
    It reports failures with ``print``: kept out of stdout, logged instead."""
    import onnxruntime

    with contextlib.redirect_stdout(io.StringIO()) as said:
        try:
            onnxruntime.preload_dlls()
        except RuntimeError as exc:
            print(exc)
    if text := said.getvalue().strip():
        logger.warning("onnxruntime.preload_dlls(): %s", text)


def publish(data_path: Path) -> Published:
    """Write this process's probe where the web process reads it (atomically; the GPU worker
    does this at start, in a thread: ``nvidia-smi`` can take a second)."""
    record = Published(report=probe(), pid=os.getpid(), at=time.time())
    target = data_path / PUBLISHED
    temp = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(msgspec.json.encode(record))
        temp.replace(target)
    except OSError as exc:  # the models page then shows the web process's own probe
        logger.warning("could not write %s: %s", target, exc)
    return record


def published(data_path: Path) -> Published | None:
    """The GPU worker's probe, or None when none has been written (or it cannot be read)."""
    try:
        return msgspec.json.decode((data_path / PUBLISHED).read_bytes(), type=Published)
    except (OSError, msgspec.DecodeError):
        return None


def as_dict(report: DeviceReport) -> dict[str, Any]:
    return msgspec.to_builtins(report)  # type: ignore[no-any-return]
