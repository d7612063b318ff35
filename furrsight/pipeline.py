"""The order of the stages, and the one place that knows every feature's jobs.

ingest -> embed -> mine pairs -> analyse. Each feature declares its actors here; a later issue
chains a finished stage's work to the next stage's job here too.
"""

from __future__ import annotations

from dramatiq import Broker

from furrsight.backup import tasks as backup_tasks
from furrsight.exports import tasks as exports_tasks
from furrsight.images import tasks as images_tasks
from furrsight.inference import tasks as inference_tasks
from furrsight.inference.manifest import ModelError
from furrsight.jobs.runner import JobContext, Then
from furrsight.pairs import tasks as pairs_tasks
from furrsight.pairs.analysis import start_analyse
from furrsight.pairs.mining import start_mine
from furrsight.queries import tasks as queries_tasks
from furrsight.scraping import tasks as scraping_tasks
from furrsight.search import tasks as search_tasks
from furrsight.search.service import start_embed
from furrsight.settings import Settings


def embed_new_images(broker: Broker, settings: Settings) -> Then:
    """ingest -> embed: an import or scrape that stored new images queues the embedding job."""

    async def then(ctx: JobContext) -> None:
        if ctx.counters.get("new"):
            try:
                job = await start_embed(broker, settings, creator="pipeline")
            except ModelError as exc:  # nothing to embed with: say so, the images wait
                ctx.log(f"new images not embedded: {exc}")
                return
            ctx.log(f"queued embedding job {job.id} for the new images")

    return then


def mine_after_embedding(broker: Broker, settings: Settings) -> Then:
    """embed -> mine pairs: an embedding job that embedded images queues mining."""

    async def then(ctx: JobContext) -> None:
        if ctx.counters.get("embedded"):
            job = await start_mine(broker, settings, "pipeline")
            ctx.log(f"queued pair mining job {job.id} for the newly embedded images")

    return then


def analyse_mined_pairs(broker: Broker, settings: Settings) -> Then:
    """mine pairs -> analyse: a mining job that found new candidates queues their analysis."""

    async def then(ctx: JobContext) -> None:
        if ctx.counters.get("new") and settings.pairs.analyse_after_mining:
            job = await start_analyse(broker, settings, "pipeline")
            ctx.log(f"queued analysis job {job.id} for the new candidates")

    return then


def register_tasks(broker: Broker, settings: Settings) -> None:
    """Declare every feature's actors on ``broker`` (the web process sends, workers run)."""
    embed = embed_new_images(broker, settings)
    images_tasks.register(broker, settings, then=embed)
    scraping_tasks.register(broker, settings, then=embed)
    inference_tasks.register(broker, settings)
    search_tasks.register(broker, settings, then_embed=mine_after_embedding(broker, settings))
    pairs_tasks.register(broker, settings, then_mine=analyse_mined_pairs(broker, settings))
    queries_tasks.register(broker, settings)
    exports_tasks.register(broker, settings)
    backup_tasks.register(broker, settings)
