"""Embeddings and search: the embedding and breed-tagging jobs, similar / image / text search,
near-duplicate clusters. Plain async functions over the database, the file store and the models.

Vectors are written through ``vectors.py`` on a connection of our own, in a thread; model
inference runs in threads too, and the next batch is decoded while the current one runs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from dramatiq import Broker

from furrsight.db.engine import connect
from furrsight.images import service as images
from furrsight.inference.install import ModelStore
from furrsight.inference.manifest import ModelError
from furrsight.inference.residency import RESIDENCY, Residency
from furrsight.jobs.runner import JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import submit
from furrsight.search import vectors
from furrsight.search.breeds import identify
from furrsight.search.embedder import ImageEmbedder, image_embedder, preprocess, text_embedder
from furrsight.search.schemas import Hit, HitPage
from furrsight.search.tagging import put_tags
from furrsight.settings import Settings
from furrsight.store import FileStore

EMBED_KIND = "search.embed"
T = TypeVar("T")


def model_store(settings: Settings) -> ModelStore:
    return ModelStore(settings.data_path / "models")


async def in_db(settings: Settings, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(conn, *args)`` on a fresh connection in a worker thread."""

    def call() -> T:
        conn = connect(settings.db_path, settings.db_busy_timeout_ms)
        try:
            return fn(conn, *args, **kwargs)
        finally:
            conn.close()

    return await asyncio.to_thread(call)


async def _start_with_model(
    broker: Broker, settings: Settings, kind: str, model: str | None, creator: str | None
) -> JobOut:
    name = model or settings.search.model
    ensure_model(settings, name)  # ModelError saying how to install it, before anything is queued
    return await submit(broker, settings.data_path, kind, {"model": name}, creator)


async def start_embed(
    broker: Broker, settings: Settings, model: str | None = None, creator: str | None = None
) -> JobOut:
    """The one way to start an embedding job (routes, the pipeline, schedules); ``ModelError``
    when the model is not installed."""
    return await _start_with_model(broker, settings, EMBED_KIND, model, creator)


# -- the embedding job ---------------------------------------------------------------------------
def _prepare(embedder: ImageEmbedder, items: list[tuple[int, Path]]) -> tuple[list[int], np.ndarray, list[str]]:
    ids, arrays, errors = [], [], []
    for image_id, path in items:
        try:
            arrays.append(preprocess(path, embedder.pre))
            ids.append(image_id)
        except (OSError, ValueError) as exc:
            errors.append(f"image {image_id}: cannot decode {path.name}: {exc}")
    return ids, (np.stack(arrays) if arrays else np.zeros((0,))), errors


def _embed_batch(embedder: ImageEmbedder, items: list[tuple[int, Path]]) -> tuple[list[int], Any, Any, list[str]]:
    """Decode, preprocess and run one batch in one worker-thread call."""
    ids, pixels, errors = _prepare(embedder, items)
    if not ids:
        return ids, None, None, errors
    vecs, probs = embedder.run(pixels)
    return ids, vecs, probs, errors


def _put(conn: sqlite3.Connection, name: str, ids: list[int], vecs: np.ndarray, tags: list[Any] | None) -> None:
    """Vectors, and tags for the images that got one (an image removed meanwhile gets neither).
    Which model embedded what is kept here, in search's own tables, never in the image's state."""
    if vectors.put(conn, name, ids, vecs) and tags is not None:
        put_tags(conn, name, ids, tags)


async def _store_batch(
    settings: Settings, conn: sqlite3.Connection, name: str, ids: list[int], vecs: np.ndarray, probs: Any
) -> None:
    tags = None if probs is None else [identify(p, settings.search.not_a_dog_below) for p in probs]
    await asyncio.to_thread(_put, conn, name, ids, vecs, tags)


async def process_images(ctx: JobContext, name: str, ids: list[int]) -> None:
    """Embed ``ids`` with model ``name`` in batches: vectors, and breed tags when it classifies.
    Decoding and inference use every core in turn (as a bare loop does); the database writes of
    one batch overlap the next batch. Cancellation is checked between batches."""
    settings = ctx.settings
    store = FileStore(settings.data_path)
    embedder = await asyncio.to_thread(
        image_embedder, model_store(settings), name, RESIDENCY, settings.search.idle_unload_s
    )
    ctx.log(f"model {name} on {embedder.model.provider}; {len(ids)} images, batches of {settings.search.batch_size}")
    await ctx.set_total(len(ids))
    size = settings.search.batch_size
    writing: asyncio.Future[None] | None = None
    conn = connect(settings.db_path, settings.db_busy_timeout_ms, any_thread=True)  # one for the job's writes
    try:
        for lo in range(0, len(ids), size):
            batch = ids[lo : lo + size]
            await ctx.check_cancelled()
            items = await images.originals(store, batch)
            done_ids, vecs, probs, errors = await asyncio.to_thread(_embed_batch, embedder, items)
            for error in errors:
                ctx.log(error)
                ctx.count("failed")
            if done_ids:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(_store_batch(settings, conn, name, done_ids, vecs, probs))
                ctx.count("embedded", len(done_ids))
            await ctx.advance(len(batch))
    finally:
        if writing is not None:
            await writing
        conn.close()


async def run_embed(ctx: JobContext) -> None:
    """Embed every image without a vector for the model (one per image and model, never redone)."""
    name = ctx.params.get("model") or ctx.settings.search.model
    ids = await in_db(ctx.settings, vectors.without_vector, name, await images.usable_image_ids())
    await process_images(ctx, name, ids)


async def embedded_models(settings: Settings, image_id: int) -> list[str]:
    """The models that have embedded the image (what search knows of it)."""
    return await in_db(settings, vectors.models_of, image_id)


# -- search --------------------------------------------------------------------------------------
def _knn(settings: Settings, name: str, query: np.ndarray, k: int, exclude: int | None = None) -> Any:
    s = settings.search
    return in_db(settings, vectors.knn, name, query, k, prefilter_factor=s.prefilter_factor, exclude=exclude)


def _page(name: str, hits: list[tuple[int, float]]) -> HitPage:
    return HitPage(model=name, items=[Hit(id=i, score=round(s, 5)) for i, s in hits])


class NotEmbedded(LookupError):
    """The image has no vector yet for the model."""


async def similar(settings: Settings, image_id: int, k: int, model: str | None = None) -> HitPage:
    name = model or settings.search.model
    vector = await in_db(settings, vectors.get, name, image_id)
    if vector is None:
        raise NotEmbedded(f"image {image_id} has no {name} vector yet: run the embedding job (POST /api/v1/embeddings)")
    return _page(name, await _knn(settings, name, vector, k, exclude=image_id))


async def search_by_image(
    settings: Settings, residency: Residency, data: bytes, k: int, model: str | None = None
) -> HitPage:
    """Images like one uploaded photo. ``residency`` is the caller's: the web process passes its
    CPU-only one (a single small image needs no GPU, and the web process never takes GPU memory)."""
    name = model or settings.search.model
    embedder = await asyncio.to_thread(image_embedder, model_store(settings), name, residency)
    vecs, _ = await asyncio.to_thread(embedder.embed, [data])
    return _page(name, await _knn(settings, name, vecs[0], k))


async def search_text(
    settings: Settings, residency: Residency, query: str, k: int, model: str | None = None
) -> HitPage:
    name = model or settings.search.model
    embedder = await asyncio.to_thread(text_embedder, model_store(settings), name, residency)
    vecs = await asyncio.to_thread(embedder.embed, [query])
    return _page(name, await _knn(settings, name, vecs[0], k))


def ensure_model(settings: Settings, name: str) -> None:
    model_store(settings).require(name)


# -- breeds --------------------------------------------------------------------------------------
TAG_KIND = "search.tag_breeds"


async def start_tag_breeds(
    broker: Broker, settings: Settings, model: str | None = None, creator: str | None = None
) -> JobOut:
    """The one way to start a breed-tagging job; ``ModelError`` when the model is not installed."""
    return await _start_with_model(broker, settings, TAG_KIND, model, creator)


async def run_tag_breeds(ctx: JobContext) -> None:
    """Tag every image that has no breed tag from the model with its top breed and confidence."""
    from furrsight.search.tagging import ids_without_tag

    name = ctx.params.get("model") or ctx.settings.search.model
    manifest = model_store(ctx.settings).require(name)
    if manifest.labels != "imagenet-1k":
        raise ModelError(f"model {name} does not classify ImageNet classes: breed tags need efficientnet-lite0")
    await process_images(ctx, name, await ids_without_tag(name, await images.usable_image_ids()))


async def identify_photo(settings: Settings, residency: Residency, data: bytes, model: str | None = None) -> Any:
    """Breed, confidence, top-5 and dog probability of one photo (raises ValueError/OSError on
    a file that is not an image, ModelError when the model does not classify). ``residency`` is
    the caller's (the web process's is CPU-only)."""
    name = model or settings.search.model
    embedder = await asyncio.to_thread(image_embedder, model_store(settings), name, residency)
    if not embedder.classifies:
        raise ModelError(
            f"model {name} does not classify ImageNet classes: breed identification needs efficientnet-lite0"
        )
    _, probs = await asyncio.to_thread(embedder.embed, [data])
    assert probs is not None
    result = identify(probs[0], settings.search.not_a_dog_below)
    result.model = name
    return result
