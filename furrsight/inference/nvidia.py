"""The NVIDIA driver as ``nvidia-smi -q`` reports it: the GPUs, the driver's version and the CUDA
version it supports; or, in words, why there is no usable GPU."""

from __future__ import annotations

import shutil
import subprocess

import msgspec

NO_DRIVER = "no NVIDIA driver (nvidia-smi not found)"
# the first driver branch that supports each CUDA major version (NVIDIA's CUDA release notes)
DRIVER_FOR_CUDA = {12: "525", 13: "580"}


class Driver(msgspec.Struct, frozen=True, kw_only=True):
    """What ``nvidia-smi`` says; ``problem`` is empty when it lists a GPU."""

    problem: str = ""
    version: str = ""  # the driver's version, "580.65.06"
    cuda: str = ""  # the CUDA version the driver supports, "13.0"
    gpus: list[str] = []


def nvidia_driver(timeout: float = 15.0) -> Driver:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Driver(problem=NO_DRIVER)
    try:
        done = subprocess.run([smi, "-q"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Driver(problem=f"nvidia-smi did not answer: {exc}")
    if done.returncode != 0:
        said = (done.stdout.strip() or done.stderr.strip() or f"exit status {done.returncode}").splitlines()[0]
        return Driver(problem=f"nvidia-smi cannot use the NVIDIA driver: {said}")
    fields: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), []).append(value.strip())
    version, cuda = fields.get("Driver Version", [""])[0], fields.get("CUDA Version", [""])[0]
    gpus = fields.get("Product Name", [])
    if not gpus:
        return Driver(problem=f"nvidia-smi lists no GPU (driver {version})", version=version, cuda=cuda)
    return Driver(version=version, cuda=cuda, gpus=gpus)


def driver_fix(driver: Driver) -> str:
    """Nothing to fix on a machine without an NVIDIA driver (the CPU is the device there)."""
    if driver.problem == NO_DRIVER:
        return ""
    return "make nvidia-smi list the GPU: (re)install the NVIDIA driver, or reboot after a driver update"


def cuda_major(version: str) -> int:
    """13 for "13.0"; 0 when unknown."""
    head = version.split(".")[0]
    return int(head) if head.isdigit() else 0
