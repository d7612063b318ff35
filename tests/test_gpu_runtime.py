"""Issue 15, item 6: the GPU, used for real -- which device each runtime uses, and why, in words.

This machine has no GPU. What is faked is only the NVIDIA driver: an ``nvidia-smi`` script on the
PATH of a subprocess, printing what a real one prints (``nvidia-smi -q``). Everything after it --
the device probe, onnxruntime, llama.cpp, ``furrsight doctor``, the GPU worker, the models page --
is the real code on the tiny generated models.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from furrsight.inference import devices
from furrsight.settings import Settings
from tests.conftest import ROOT, WorkerProcess, app_client, own_data, user_with_token
from tests.tiny_models import make_tiny_clip, make_tiny_gguf

SMI = """#!/bin/sh
cat <<'EOF'

==============NVSMI LOG==============

Timestamp                                 : Tue Dec  1 11:00:00 2026
Driver Version                            : {driver}
CUDA Version                              : {cuda}

Attached GPUs                             : 1
GPU 00000000:01:00.0
    Product Name                          : NVIDIA GeForce RTX 4090
    Product Brand                         : GeForce
EOF
"""

# what a GPU worker does with a model: the GPU residency's providers and layers, a real session
# and a real llama.cpp model; prints what it got
LOAD = """
import json, sys
from pathlib import Path
import numpy as np
from furrsight.inference import devices
from furrsight.inference.gguf_runtime import GGUFChat
from furrsight.inference.install import ModelStore
from furrsight.inference.residency import Residency
from furrsight.inference.service import onnx_model

folder = Path(sys.argv[1])
residency = Residency(device="gpu")
store = ModelStore(folder / "models")
model = onnx_model(store, store.require("tiny-clip"), residency)
embedding = model.run(np.zeros((1, 3, 32, 32), np.float32))["embedding"]
llm = GGUFChat(folder / "tiny.gguf", n_ctx=256)
schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
answer = llm.chat_json([{"role": "user", "content": "ok?"}], schema, max_tokens=32)
print(json.dumps({"asked": model.wanted, "got": model.load().get_providers(), "dim": embedding.shape[1],
                  "layers": llm.n_gpu_layers, "residency_layers": residency.gpu_layers,
                  "answered": sorted(answer), "probe": devices.as_dict(devices.probe())}))
"""

NO_DRIVER = {"problem": "no NVIDIA driver (nvidia-smi not found)", "version": "", "cuda": "", "gpus": []}
DRIVER_13 = {"problem": "", "version": "580.65.06", "cuda": "13.0", "gpus": ["NVIDIA GeForce RTX 4090"]}
DRIVER_12 = {"problem": "", "version": "550.54.14", "cuda": "12.4", "gpus": ["NVIDIA GeForce RTX 4090"]}
PIP = "pip install 'onnxruntime-gpu[cuda,cudnn]' (the installer does this)"
LLAMA = ("CMAKE_ARGS=-DGGML_CUDA=on pip install --force-reinstall --no-cache-dir llama-cpp-python "
         "(needs a CUDA toolkit; the installer does this where nvidia-smi finds a GPU)")  # fmt: skip
CPU_BUILD = {"runtime": "gguf", "device": "cpu", "reason": "llama-cpp-python 0.3.36 built without CUDA", "fix": LLAMA}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from furrsight.inference.install import ModelStore

    folder = tmp_path_factory.mktemp("gpu-models")
    image_dir, _ = make_tiny_clip(folder / "made")
    ModelStore(folder / "models").import_files("tiny-clip", image_dir)
    make_tiny_gguf(folder / "tiny.gguf")
    return folder


def bare_path() -> str:
    """This machine's PATH: no nvidia-smi on it (the premise of the tests; checked)."""
    path = os.environ["PATH"]
    assert shutil.which("nvidia-smi", path=path) is None, "this machine has an nvidia-smi: the tests assume none"
    return path


def fake_driver(folder: Path, driver: str, cuda: str) -> str:
    """A PATH whose nvidia-smi reports one GPU and a driver supporting ``cuda``."""
    folder.mkdir(parents=True, exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text(SMI.format(driver=driver, cuda=cuda))
    smi.chmod(0o755)
    return f"{folder}:{bare_path()}"


def env_with(path: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": path, **extra}


def load_in_subprocess(models: Path, path: str) -> tuple[dict, str]:  # type: ignore[type-arg]
    done = subprocess.run([sys.executable, "-c", LOAD, str(models)], env=env_with(path), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_without_a_driver_models_run_on_the_cpu_and_nothing_is_said(models: Path) -> None:
    got, stderr = load_in_subprocess(models, bare_path())
    assert stderr == ""  # no red onnxruntime errors, no warnings
    assert got == {
        "asked": ["CPUExecutionProvider"], "got": ["CPUExecutionProvider"], "dim": 16, "layers": 0,
        "residency_layers": 0, "answered": ["ok"],
        "probe": {
            "driver": NO_DRIVER,
            "onnx": {"runtime": "onnx", "device": "cpu", "reason": NO_DRIVER["problem"], "fix": ""},
            "gguf": {"runtime": "gguf", "device": "cpu", "reason": NO_DRIVER["problem"], "fix": ""},
        },
    }  # fmt: skip


def test_a_driver_without_the_cuda_libraries_says_which_library_and_the_pip_command(
    models: Path, tmp_path: Path
) -> None:
    assert ctypes.util.find_library("cublasLt") is None, "this machine has libcublasLt: the test assumes none"
    got, stderr = load_in_subprocess(models, fake_driver(tmp_path / "bin", "580.65.06", "13.0"))
    assert stderr == ""  # still quiet: CUDA was never asked for
    assert (got["asked"], got["got"], got["layers"]) == (["CPUExecutionProvider"], ["CPUExecutionProvider"], 0)
    assert got["probe"] == {
        "driver": DRIVER_13,
        "onnx": {"runtime": "onnx", "device": "cpu", "reason": "libcublasLt.so.13 not found", "fix": PIP},
        "gguf": CPU_BUILD,
    }


def test_a_driver_too_old_for_onnxruntimes_cuda_is_a_version_mismatch(models: Path, tmp_path: Path) -> None:
    got, stderr = load_in_subprocess(models, fake_driver(tmp_path / "bin", "550.54.14", "12.4"))
    assert stderr == ""
    assert got["got"] == ["CPUExecutionProvider"]
    assert got["probe"] == {
        "driver": DRIVER_12,
        "onnx": {
            "runtime": "onnx", "device": "cpu",
            "reason": "driver 550.54.14 supports CUDA 12.4; onnxruntime-gpu 1.31.1 needs CUDA 13",
            "fix": "update the NVIDIA driver (580 or newer supports CUDA 13)",
        },
        "gguf": CPU_BUILD,
    }  # fmt: skip


def test_a_driver_that_cannot_reach_the_gpu_is_said_with_nvidia_smis_words(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    smi = folder / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"\n"
                   "exit 9\n")  # fmt: skip
    smi.chmod(0o755)
    code = "import json; from furrsight.inference import devices; print(json.dumps(devices.as_dict(devices.probe())))"
    done = subprocess.run([sys.executable, "-c", code], env=env_with(f"{folder}:{bare_path()}"), cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    reason = ("nvidia-smi cannot use the NVIDIA driver: NVIDIA-SMI has failed because it couldn't communicate with "
              "the NVIDIA driver.")  # fmt: skip
    fix = "make nvidia-smi list the GPU: (re)install the NVIDIA driver, or reboot after a driver update"
    assert done.stderr == ""
    assert json.loads(done.stdout)["onnx"] == {"runtime": "onnx", "device": "cpu", "reason": reason, "fix": fix}


def doctor_lines(path: str, data: Path) -> list[str]:
    env = {k: v for k, v in env_with(path).items() if not k.startswith("FURRSIGHT_")}
    done = subprocess.run([sys.executable, "-m", "furrsight", "doctor"], env={**env, "FURRSIGHT_DATA": str(data)},
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    lines = done.stdout.splitlines()
    picked = []
    for i, line in enumerate(lines):
        if " runtime: " in line:
            picked.append(line)
            if i + 1 < len(lines) and lines[i + 1].startswith("      fix: "):
                picked.append(lines[i + 1])
    return picked


def test_doctor_says_each_runtimes_device_and_why(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert doctor_lines(bare_path(), data) == [
        "  ok  ONNX runtime: CPU, because no NVIDIA driver (nvidia-smi not found)",
        "  ok  GGUF runtime: CPU, because no NVIDIA driver (nvidia-smi not found)",
    ]
    assert doctor_lines(fake_driver(tmp_path / "bin13", "580.65.06", "13.0"), data) == [
        "warn  ONNX runtime: CPU, because libcublasLt.so.13 not found",
        f"      fix: {PIP}",
        "warn  GGUF runtime: CPU, because llama-cpp-python 0.3.36 built without CUDA",
        f"      fix: {LLAMA}",
    ]
    assert doctor_lines(fake_driver(tmp_path / "bin12", "550.54.14", "12.4"), data)[:2] == [
        "warn  ONNX runtime: CPU, because driver 550.54.14 supports CUDA 12.4; onnxruntime-gpu 1.31.1 needs CUDA 13",
        "      fix: update the NVIDIA driver (580 or newer supports CUDA 13)",
    ]


def wait_for(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.1)


async def test_the_models_page_says_each_runtimes_device_as_the_gpu_worker_found_it(
    migrated: Settings, settings_env: dict[str, str], tmp_path: Path
) -> None:
    async with own_data(tmp_path / "data", migrated) as own:
        _, token = await user_with_token("admin")  # in this data directory's own database
        async with app_client(own, token) as client:  # no GPU worker yet: this process's own probe
            page = (await client.get("/models")).text
            api = (await client.get("/api/v1/devices")).json()
        assert "on these devices\n(as this web process finds them: no GPU worker has reported yet):" in page
        assert (
            "<li>ONNX models (embeddings, breed tags): <strong>CPU</strong>, because no NVIDIA driver "
            "(nvidia-smi not found)</li>" in page
        )
        assert (
            "<li>GGUF models (query LLM, pair analysis): <strong>CPU</strong>, because no NVIDIA driver "
            "(nvidia-smi not found)</li>" in page
        )
        assert (api["source"], api["pid"], api["onnx"]["reason"]) == ("web", os.getpid(), NO_DRIVER["problem"])

        # a real GPU worker, on a machine whose driver supports CUDA 13 (no CUDA libraries here)
        own_env = {
            **settings_env,
            "FURRSIGHT_DATA": str(own.data_path),
            "FURRSIGHT_BROKER_NAMESPACE": "gpu-runtime-test",
        }
        env = env_with(fake_driver(tmp_path / "bin", "580.65.06", "13.0"), **own_env)
        log = tmp_path / "gpu-worker.log"
        worker = WorkerProcess(env, queues="gpu", log=log).start()
        try:
            wait_for(lambda: devices.published(own.data_path) is not None, "the GPU worker's devices")
        finally:
            worker.stop()
        found = devices.published(own.data_path)
        assert found is not None and found.pid != os.getpid()
        async with app_client(own, token) as client:
            page = (await client.get("/models")).text
            api = (await client.get("/api/v1/devices")).json()
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(found.at))
        assert f"on these devices\n(as the GPU worker, pid {found.pid}, found them at {at}):" in page
        assert (
            "<li>ONNX models (embeddings, breed tags): <strong>CPU</strong>, because libcublasLt.so.13 not found. "
            "Fix: <code>pip install &#39;onnxruntime-gpu[cuda,cudnn]&#39; (the installer does this)</code></li>" in page
        )
        assert (
            "<li>GGUF models (query LLM, pair analysis): <strong>CPU</strong>, because llama-cpp-python 0.3.36 "
            f"built without CUDA. Fix: <code>{LLAMA}</code></li>" in page
        )
        assert (api["source"], api["pid"], api["driver"]) == ("gpu-worker", found.pid, DRIVER_13)
        said = [line.split("] ", 4)[-1] for line in log.read_text().splitlines() if "[furrsight.inference" in line]
        assert said == [  # once, at info level; no warning, no error
            "[INFO] ONNX models: CPU, because libcublasLt.so.13 not found",
            "[INFO] GGUF models: CPU, because llama-cpp-python 0.3.36 built without CUDA",
        ]
        lines = log.read_text().splitlines()
        assert [line for line in lines if not line.startswith("[20")] == []  # nothing raw on stderr (onnxruntime's)
        assert [line for line in lines if "[furrsight" in line and ("[WARNING]" in line or "[ERROR]" in line)] == []


def test_preload_dlls_failures_go_to_the_log_not_to_stdout() -> None:
    """onnxruntime's ``preload_dlls()`` reports each library it cannot load with ``print``; called
    before a CUDA session (only where the probe found the libraries), its words reach the log."""
    code = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stderr, format='%(levelname)s %(name)s: %(message)s')\n"
        "from furrsight.inference import devices\n"
        "devices.prepare_onnx_cuda()\n"
        "devices.prepare_onnx_cuda()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines()[0] == (
        "WARNING furrsight.inference.devices: onnxruntime.preload_dlls(): Failed to load libcublasLt.so.13: "
        "libcublasLt.so.13: cannot open shared object file: No such file or directory"
    )
    assert done.stderr.count("WARNING") == 1  # once per process
