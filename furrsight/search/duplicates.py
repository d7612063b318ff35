"""Near-duplicate clusters as a job: read a model's vectors, build the kNN graph block by block
(``clusters.py``), label its connected components, keep the result as the model's latest clusters.
The pages and the API read that result; they never compute it in a request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from dramatiq import Broker

from furrsight.jobs.runner import JobContext
from furrsight.jobs.service import submit
from furrsight.search import clusters, vectors
from furrsight.search.schemas import Clusters
from furrsight.search.service import in_db
from furrsight.settings import Settings

CLUSTER_KIND = "search.clusters"


class NoClusters(LookupError):
    """No clusters have been computed for the model yet."""


def clusters_path(settings: Settings, name: str) -> Path:
    """The latest clusters of a model: derived data (rebuilt by the job), like the thumbnails."""
    return settings.data_path / "clusters" / f"{name}.json"


async def submit_clusters(
    broker: Broker, settings: Settings, model: str | None, max_distance: float | None, creator: str | None
) -> Any:
    name = model or settings.search.model
    distance = settings.search.near_dup_distance if max_distance is None else max_distance
    return await submit(broker, settings.data_path, CLUSTER_KIND, {"model": name, "max_distance": distance}, creator)


async def run_clusters(ctx: JobContext) -> None:
    """Near-duplicate clusters of one model's vectors, block by block (progress per image,
    cancellation between blocks); the result replaces the model's previous one atomically."""
    name, distance = ctx.params["model"], float(ctx.params["max_distance"])
    ids, data = await in_db(ctx.settings, vectors.all_vectors, name)
    await ctx.set_total(len(ids))
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    step = clusters.block_size(len(ids))
    for lo in range(0, len(ids), step):
        await ctx.check_cancelled()
        hi = min(lo + step, len(ids))
        r, c = await asyncio.to_thread(clusters.block_edges, data, lo, hi, distance)
        rows.append(r)
        cols.append(c)
        await ctx.advance(hi - lo)
    groups = await asyncio.to_thread(clusters.components, ids, rows, cols)
    result = Clusters(model=name, max_distance=distance, clusters=groups, images=len(ids), job_id=ctx.job_id,
                      computed_at=datetime.now(UTC).isoformat(timespec="seconds"))  # fmt: skip
    path = clusters_path(ctx.settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(f".{ctx.job_id}.tmp")
    temp.write_bytes(msgspec.json.encode(result))
    temp.replace(path)
    ctx.count("images", len(ids))
    ctx.count("clusters", len(groups))
    ctx.count("clustered_images", sum(len(g) for g in groups))
    ctx.log(f"{len(groups)} clusters of {name} vectors within cosine distance {distance} among {len(ids)} images")


async def near_duplicate_clusters(settings: Settings, model: str | None = None) -> Clusters:
    """The latest clusters computed for the model; NoClusters when the job has not run yet."""
    name = model or settings.search.model
    path = clusters_path(settings, name)
    if not path.exists():
        raise NoClusters(f"no near-duplicate clusters computed for {name} yet: start the job "
                         "(POST /api/v1/search/clusters, or the button on /search/duplicates)")  # fmt: skip
    return msgspec.json.decode(await asyncio.to_thread(path.read_bytes), type=Clusters)
