"""The order of the stages, and the one place that knows every feature's jobs.

ingest -> embed -> mine pairs -> analyse. Each feature declares its actors here; a later issue
chains a finished stage's work to the next stage's job here too.
"""

from __future__ import annotations

from typing import Any

from dramatiq import Broker

from furrsight.backup import tasks as backup_tasks
from furrsight.backup.service import start_backup
from furrsight.exports import tasks as exports_tasks
from furrsight.images import tasks as images_tasks
from furrsight.inference import tasks as inference_tasks
from furrsight.inference.manifest import ModelError
from furrsight.jobs.runner import JobContext, Then
from furrsight.jobs.schemas import JobOut
from furrsight.pairs import tasks as pairs_tasks
from furrsight.pairs.analysis import start_analyse
from furrsight.pairs.mining import start_mine
from furrsight.queries import tasks as queries_tasks
from furrsight.schedules import housekeeping
from furrsight.schedules import tasks as schedules_tasks
from furrsight.schedules.service import ScheduledAction, ScheduleError, register_action
from furrsight.scraping import tasks as scraping_tasks
from furrsight.scraping.schemas import ScrapeRequest
from furrsight.scraping.service import ScrapeRequestError, start_scrape, validate_request
from furrsight.search import tasks as search_tasks
from furrsight.search.service import start_embed
from furrsight.settings import Settings

ANALYSE_PARAMS = {"status", "origin", "prompt_version", "limit"}


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
    schedules_tasks.register(broker, settings)
    register_schedulable_actions()


def _scrape_request(params: dict[str, Any]) -> ScrapeRequest:
    unknown = set(params) - {"plugin", "params"}
    if unknown or not isinstance(params.get("plugin"), str) or not isinstance(params.get("params", {}), dict):
        raise ScheduleError("params: {plugin: a scraper plugin's name, params: its parameters} and nothing else")
    return ScrapeRequest(plugin=params["plugin"], params=params.get("params", {}), over_queries=True)


def _check_scrape(settings: Settings, params: dict[str, Any]) -> None:
    try:
        validate_request(settings, _scrape_request(params))
    except ScrapeRequestError as exc:
        raise ScheduleError(f"params.{exc}") from exc


async def _scrape(broker: Broker, settings: Settings, params: dict[str, Any], creator: str) -> JobOut:
    return await start_scrape(broker, settings, creator, request=_scrape_request(params))


def _check_analyse(settings: Settings, params: dict[str, Any]) -> None:
    unknown = set(params) - ANALYSE_PARAMS
    if unknown:
        raise ScheduleError(
            f"params: unknown {', '.join(sorted(unknown))} (known: {', '.join(sorted(ANALYSE_PARAMS))})"
        )


def _check_backup(settings: Settings, params: dict[str, Any]) -> None:
    if set(params) - {"models"} or not isinstance(params.get("models", False), bool):
        raise ScheduleError('params: {"models": true or false} (whether the models go into the backup too)')


async def _backup(broker: Broker, settings: Settings, params: dict[str, Any], creator: str) -> JobOut:
    return await start_backup(broker, settings, creator, models=bool(params.get("models", False)))


async def _analyse(broker: Broker, settings: Settings, params: dict[str, Any], creator: str) -> JobOut:
    return await start_analyse(broker, settings, creator, **params)


def register_schedulable_actions() -> None:
    """What a schedule can run: each an existing start function, so each firing is an ordinary
    job; a new job kind that should be schedulable is added here."""
    register_action("scrape", ScheduledAction(_scrape, "a scrape run over the enabled queries", _check_scrape))
    register_action("analyse", ScheduledAction(_analyse, "re-analysis of pairs (default: candidates)", _check_analyse))
    register_action(
        "cleanup",
        ScheduledAction(
            housekeeping.start_cleanup,
            "remove job logs older than log_days (30) and stale incoming/ staging folders (staging_days, 7)",
            housekeeping.check_cleanup,
        ),
    )
    register_action(
        "backup", ScheduledAction(_backup, "a backup into <data>/backups/ (models: false)", _check_backup, role="admin")
    )
    register_action(
        "retry_failed",
        ScheduledAction(
            housekeeping.start_retry_failed,
            "retry the jobs that failed within within_days (1)",
            housekeeping.check_retry,
        ),
    )
