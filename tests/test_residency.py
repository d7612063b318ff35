"""Issue 10, item 7: the web process never takes GPU memory (CPU sessions only), idle models are
unloaded, the query LLM goes through the residency manager, near-duplicate clusters come from a
kNN graph (the same answer as every pair above the threshold)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from litestar.testing import AsyncTestClient

from furrsight.inference import devices
from furrsight.inference.install import ModelStore
from furrsight.inference.residency import RESIDENCY, IdleSweeper, Residency
from furrsight.inference.service import onnx_model
from furrsight.queries.llm import LlamaCppChat
from furrsight.search.clusters import knn_clusters
from tests.tiny_models import make_tiny_clip, make_tiny_gguf

DOG = Path("/usr/share/darknet/data/dog.jpg")


def wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


async def test_the_web_process_answers_single_images_on_cpu_sessions_only(client: AsyncTestClient) -> None:
    response = await client.post("/api/v1/breeds/identify", files={"file": ("dog.jpg", DOG.read_bytes())})
    assert response.status_code == 200 and response.json()["is_dog"]
    web = client.app.state.residency
    key = "efficientnet-lite0:efficientnet-lite0.onnx"
    assert web.device == "cpu" and web.resident() == [key]
    model = web.peek(key)
    assert model.wanted == ["CPUExecutionProvider"]  # never asked for CUDA ...
    assert model.load().get_providers() == ["CPUExecutionProvider"]  # ... and got the CPU
    # elsewhere (the GPU worker's residency) the same model asks for what the device probe allows:
    # the CPU only on this machine without an NVIDIA driver (the cases: tests/test_gpu_runtime.py)
    store = ModelStore(client.app.state.settings.data_path / "models")
    elsewhere = onnx_model(store, store.require("efficientnet-lite0"), Residency(device="gpu"))
    assert elsewhere.wanted == devices.onnx_providers() == ["CPUExecutionProvider"] and not elsewhere.loaded
    page = await client.get("/models")
    assert page.status_code == 200 and f"{key} on <strong>CPUExecutionProvider</strong>" in page.text
    assert web.resident() == [key]  # drawing the models page loaded nothing more
    assert RESIDENCY.device == "cpu"  # in a process that built the web app, even the default residency is CPU-only


def test_idle_models_are_unloaded_but_never_during_a_call(tmp_path: Path) -> None:
    image_dir, _ = make_tiny_clip(tmp_path)
    store = ModelStore(tmp_path / "models")
    store.import_files("tiny-clip", image_dir)
    residency = Residency(device="cpu")
    model = onnx_model(store, store.require("tiny-clip"), residency)
    model.run(np.zeros((1, 3, 32, 32), np.float32))
    assert model.loaded
    with model.in_use():  # a call in progress is not idle, however old the last acquire
        assert residency.unload_idle(0.0) == []
    sweeper = IdleSweeper(residency, max_idle_s=0.2).start()
    try:
        wait_until(lambda: residency.resident() == [])
    finally:
        sweeper.stop()
    assert not model.loaded and residency.events == ["load tiny-clip:visual.onnx", "unload tiny-clip:visual.onnx"]


def test_a_process_unloads_its_models_when_it_ends() -> None:
    """The worker's residency is emptied at exit, while the process can still report: left to
    interpreter shutdown, llama.cpp's finalizers print a traceback on closed streams."""
    script = (
        "from furrsight.inference.residency import RESIDENCY\n"
        "class Model:\n"
        "    def unload(self):\n"
        "        print('unloaded', flush=True)\n"
        "RESIDENCY.acquire('a', Model, large=True)\n"
        "RESIDENCY.acquire('b', Model)\n"
        "print('loaded', RESIDENCY.resident(), flush=True)\n"
    )
    ended = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert ended.stdout.splitlines() == ["loaded ['a', 'b']", "unloaded", "unloaded"]
    assert ended.stderr == ""


def test_the_query_llm_goes_through_the_residency_manager(tmp_path: Path) -> None:
    class Vlm:
        unloaded = False

        def unload(self) -> None:
            self.unloaded = True

    residency = Residency(device="cpu")
    vlm = residency.acquire("vlm", Vlm, large=True)
    path = make_tiny_gguf(tmp_path / "tiny.gguf")
    chat = LlamaCppChat(path, n_ctx=256, max_tokens=64, residency=residency)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    assert isinstance(chat.chat_json([{"role": "user", "content": "ok?"}], schema)["ok"], bool)
    assert vlm.unloaded and residency.resident() == [f"llm:{path}"]  # one large model at a time
    llm = residency.peek(f"llm:{path}")
    assert llm.n_gpu_layers == 0  # a CPU-only residency offloads nothing
    sweeper = IdleSweeper(residency, max_idle_s=0.2).start()
    try:
        wait_until(lambda: not residency.resident())
    finally:
        sweeper.stop()
    assert not llm.loaded


def pairwise_clusters(ids: list[int], data: np.ndarray, max_distance: float) -> list[list[int]]:
    """The old way, as the reference: every pair above the threshold, union-find in Python."""
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    rows, cols = np.nonzero(data @ data.T >= 1.0 - max_distance)
    for r, c in zip(rows, cols, strict=True):
        parent[root(int(r))] = root(int(c))
    groups: dict[int, list[int]] = {}
    for i, image_id in enumerate(ids):
        groups.setdefault(root(i), []).append(image_id)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def test_knn_graph_clusters_equal_the_pairwise_answer_on_planted_duplicates() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(size=(1500, 64)).astype(np.float32)
    copies = [base[i] + rng.normal(scale=0.01, size=(n, 64)).astype(np.float32) for i, n in ((3, 4), (40, 2), (99, 25))]
    data = np.concatenate([base, *copies])
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    ids = [1000 + i for i in range(len(data))]  # ids are not row numbers
    got = knn_clusters(ids, data, 0.01)
    assert got == pairwise_clusters(ids, data, 0.01)
    assert sorted(len(c) for c in got) == [3, 5, 26]  # each planted group, original included, in one cluster
    assert knn_clusters([], np.zeros((0, 64), np.float32), 0.01) == []
    assert knn_clusters([5], data[:1], 0.01) == []
