"""Pair analysis: the engine's pairs per second against a bare loop calling the same model on the
same pairs, in one run, on the same threads.

    PYTHONPATH=. python bench/analyse.py [--pairs 8] [--rounds 3]

* **VLM**: ``analyse_with_vlm`` (decode and downscale both photos, data: URIs, prompt, schema-
  constrained chat, validation, the verdict) on the tiny generated GGUF VLM + mmproj of the tests,
  against a bare loop of ``llm.create_chat_completion`` with the same, ready-made, messages and
  schema on the same loaded model.
* **Offline** (the default model): the ONNX breed inference of both photos (``ImageEmbedder.embed``)
  then ``identify`` and ``analyse_offline``, against a bare loop of the same ONNX calls
  (preprocess both photos, one ``session.run``).

* **The job**: the ``pairs.analyse`` job (select the pairs, read both originals from the store,
  the VLM through the residency manager, write every verdict with its history, progress) on pairs
  of stored images in a database of its own, against the same bare loop on the same photos.

Rounds are interleaved so that a busy machine slows both alike; the ratio is the median of the
paired rounds' ratios.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

BREEDS = ["Poodle", "Shih Tzu", "Yorkshire Terrier", "Maltese", "Bichon Frise", "Golden Retriever"]
SERVICES = ["bath", "full haircut", "breed trim", "teddy bear cut", "de-shedding", "nail trim", "ear cleaning"]


def make_jpeg(seed: int, size: tuple[int, int] = (1024, 768)) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(20):
        x, y = int(rng.integers(size[0])), int(rng.integers(size[1]))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((x, y, x + int(rng.integers(20, 300)), y + int(rng.integers(20, 200))), fill=fill)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def compare(name: str, pairs: int, rounds: int, bare: Callable[[], None], engine: Callable[[], None]) -> None:
    bare()  # warm both
    engine()
    wall: dict[str, list[float]] = {"bare": [], "engine": []}
    cpu: dict[str, list[float]] = {"bare": [], "engine": []}
    for _ in range(rounds):
        for key, run in (("bare", bare), ("engine", engine)):
            start, cpu_start = time.perf_counter(), time.process_time()
            run()
            wall[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - cpu_start)
    ratio = statistics.median(b / e for b, e in zip(wall["bare"], wall["engine"], strict=True))
    cpu_ratio = statistics.median(b / e for b, e in zip(cpu["bare"], cpu["engine"], strict=True))
    bare_s, engine_s = statistics.median(wall["bare"]), statistics.median(wall["engine"])
    print(f"{name}: bare {pairs / bare_s:.2f} pairs/s, engine {pairs / engine_s:.2f} pairs/s, "
          f"engine / bare {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU seconds "
          f"(target >= 0.9x; median of {rounds} paired, interleaved rounds)")  # fmt: skip


def bench_vlm(photos: list[tuple[bytes, bytes]], rounds: int) -> None:
    from furrsight.inference.gguf_runtime import GGUFChat
    from furrsight.pairs.prompting import build_schema, default_prompt_version, render_prompt
    from furrsight.pairs.vlm import analyse_with_vlm, build_messages, projector_side
    from tests.tiny_models import make_tiny_gguf, make_tiny_mmproj

    folder = Path(tempfile.mkdtemp(prefix="furrsight-bench-vlm-"))
    chat = GGUFChat(make_tiny_gguf(folder / "tiny-vlm.gguf", n_ctx=4096), make_tiny_mmproj(folder / "mmproj.gguf"),
                    n_ctx=4096, n_gpu_layers=0)  # fmt: skip
    llm = chat.load()
    side = projector_side(str(chat.mmproj_path))
    prompt = render_prompt(default_prompt_version(), SERVICES)
    schema = build_schema(BREEDS, SERVICES)
    messages = [build_messages(a, b, prompt, side) for a, b in photos]

    def bare() -> None:
        for m in messages:
            llm.create_chat_completion(messages=m, response_format={"type": "json_object", "schema": schema},
                                       max_tokens=768, temperature=0.0)  # fmt: skip

    def engine() -> None:
        for a, b in photos:
            analyse_with_vlm(chat, a, b, BREEDS, SERVICES)

    compare("tiny VLM (GGUF + mmproj, CPU)", len(photos), rounds, bare, engine)
    chat.unload()


def bench_offline(photos: list[tuple[bytes, bytes]], rounds: int) -> None:
    from furrsight.inference.manifest import CATALOGUE, catalogue
    from furrsight.inference.onnx_runtime import OnnxModel
    from furrsight.pairs.offline import ImageFacts, OfflineThresholds, analyse_offline
    from furrsight.search.breeds import identify
    from furrsight.search.embedder import ImageEmbedder, preprocess

    manifest = catalogue()["efficientnet-lite0"]
    model = OnnxModel(CATALOGUE / manifest.name / manifest.files[0].path)
    embedder = ImageEmbedder(manifest, model)
    pre = manifest.preprocess
    assert pre is not None
    thresholds = OfflineThresholds()

    def bare() -> None:
        for a, b in photos:
            model.run(np.stack([preprocess(a, pre), preprocess(b, pre)]))

    def engine() -> None:
        for a, b in photos:
            vectors, probs = embedder.embed([a, b])
            assert probs is not None
            first, second = (ImageFacts.from_breed_result(identify(p, thresholds.min_dog_probability)) for p in probs)
            analyse_offline(first, second, float(vectors[0] @ vectors[1]), ("first", 0.3), thresholds)

    compare(f"default model ({manifest.name} on {model.provider})", len(photos), rounds, bare, engine)


def bench_job(photos: list[tuple[bytes, bytes]], rounds: int) -> None:
    import asyncio
    import secrets

    import msgspec

    from furrsight.db.setup import migrate
    from furrsight.images.ingest import ingest
    from furrsight.images.schemas import Provenance
    from furrsight.inference.gguf_runtime import GGUFChat
    from furrsight.inference.install import ModelStore
    from furrsight.jobs.runner import run_job
    from furrsight.jobs.tables import Job
    from furrsight.pairs import analysis
    from furrsight.pairs import service as pairs
    from furrsight.pairs.prompting import build_schema, default_prompt_version, render_prompt
    from furrsight.pairs.vlm import build_messages, projector_side
    from furrsight.settings import load_settings
    from furrsight.store import FileStore
    from furrsight.taxonomy import service as taxonomy
    from tests.tiny_models import make_tiny_gguf, make_tiny_mmproj

    folder = Path(tempfile.mkdtemp(prefix="furrsight-bench-job-"))
    settings = msgspec.structs.replace(load_settings(environ={}), data_dir=str(folder / "data"))
    model_dir = folder / "tiny-vlm"
    model_dir.mkdir()
    make_tiny_gguf(model_dir / "tiny-vlm.gguf", n_ctx=4096)
    make_tiny_mmproj(model_dir / "mmproj.gguf")
    (model_dir / "manifest.toml").write_text(
        'name = "tiny-vlm"\ntask = "vlm"\nruntime = "gguf"\nlicense = "Apache-2.0"\nsource = "bench"\nlarge = true\n'
        '[[files]]\npath = "tiny-vlm.gguf"\n[[files]]\npath = "mmproj.gguf"\nrole = "mmproj"\n'
    )

    async def setup() -> list[int]:
        await migrate(settings)
        ModelStore(settings.data_path / "models").import_files("tiny-vlm", model_dir)
        store, ids = FileStore(settings.data_path), []
        for a, b in photos:
            first = await ingest(store, settings, a, Provenance(kind="upload"))
            second = await ingest(store, settings, b, Provenance(kind="upload"))
            assert first.image_id is not None and second.image_id is not None
            made = await pairs.create_pair(first.image_id, second.image_id, "manual", None, "api")
            ids.append(made.id)
        return ids

    ids = asyncio.run(setup())
    breeds = [b.name for b in asyncio.run(taxonomy.list_entries("breeds"))]
    services = [s.name for s in asyncio.run(taxonomy.list_entries("services"))]
    chat = GGUFChat(model_dir / "tiny-vlm.gguf", model_dir / "mmproj.gguf", n_ctx=4096, n_gpu_layers=0)
    llm = chat.load()
    prompt = render_prompt(default_prompt_version(), services)
    schema = build_schema(breeds, services)
    messages = [build_messages(a, b, prompt, projector_side(str(chat.mmproj_path))) for a, b in photos]

    def bare() -> None:
        for m in messages:
            llm.create_chat_completion(messages=m, response_format={"type": "json_object", "schema": schema},
                                       max_tokens=768, temperature=0.0)  # fmt: skip

    def job() -> None:
        async def run() -> None:
            token = secrets.token_hex(8)
            params = {"ids": ids, "status": ["candidate", "analysed", "rejected", "analysis_failed"]}
            row = Job(kind=analysis.ANALYSE_KIND, params=params, run_token=token)
            await row.save()
            await run_job(row.id, token, analysis.run_analyse, settings)

        asyncio.run(run())

    compare("analysis job (tiny VLM, stored images, verdicts written)", len(photos), rounds, bare, job)
    chat.unload()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--offline-pairs", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    photos = [(make_jpeg(2 * i), make_jpeg(2 * i + 1)) for i in range(max(args.pairs, args.offline_pairs))]
    print(f"photos: 1024x768 JPEG; {args.pairs} VLM pairs, {args.offline_pairs} offline pairs, {args.rounds} rounds")
    bench_offline(photos[: args.offline_pairs], args.rounds)
    bench_vlm(photos[: args.pairs], args.rounds)
    bench_job(photos[: args.pairs], args.rounds)
