"""Scrapers: which plugins exist, validating a scrape request, and the failures of a run."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import msgspec
from dramatiq import Broker

from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import get_job, submit
from furrsight.scraping.contract import Scraper
from furrsight.scraping.discovery import Registry, discover, missing_credentials
from furrsight.scraping.schemas import BrokenOut, FailureOut, ScrapeRequest, ScraperOut, ScrapersOut
from furrsight.scraping.tables import ScrapeUrl
from furrsight.settings import Settings

SCRAPE_KIND = "scraping.scrape"


class ScrapeRequestError(ValueError):
    """A scrape request that cannot run; the message names the bad field."""


@lru_cache(maxsize=8)
def _registry(disabled: tuple[str, ...], extra_dirs: tuple[str, ...]) -> Registry:
    return discover(list(disabled), list(extra_dirs))


def registry(settings: Settings) -> Registry:
    """The plugins of these settings (discovered once per process and settings)."""
    return _registry(tuple(sorted(settings.scraping.disabled_plugins)), tuple(settings.scraping.plugin_dirs))


def params_schema(params: type[msgspec.Struct]) -> dict[str, Any]:
    """The Params struct's JSON schema with the definitions inlined at the top."""
    schema = msgspec.json.schema(params)
    ref = schema.get("$ref", "").rsplit("/", 1)[-1]
    return {**schema.get("$defs", {}).get(ref, schema), "$defs": schema.get("$defs", {})}


def is_query_driven(params: type[msgspec.Struct]) -> bool:
    return "query" in params.__struct_fields__


def list_scrapers(settings: Settings) -> ScrapersOut:
    reg = registry(settings)
    items = [
        ScraperOut(
            name=p.name,
            description=p.description,
            params=params_schema(p.Params),
            query_driven=is_query_driven(p.Params),
            rules=getattr(p, "rules", Scraper.rules),
            credentials_missing=missing_credentials(settings.scraping, p),
            credentials_required=bool(getattr(p, "credentials_required", False)),
        )
        for p in sorted(reg.scrapers.values(), key=lambda p: p.name)
    ]
    return ScrapersOut(items=items, broken=[BrokenOut(source=b.source, error=b.error) for b in reg.broken])


def _field_error(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    match = re.search(r"at `\$\.?(.*)`", text)
    where = f"params.{match.group(1)}" if match and match.group(1) else "params"
    missing = re.search(r"missing required field `(\w+)`", text)
    if missing:
        where = f"params.{missing.group(1)}"
    unknown = re.search(r"unknown field `(\w+)`", text)
    if unknown:
        where = f"params.{unknown.group(1)}"
    return f"{where}: {re.sub(r' - at `.*`$', '', text)}"


def validate_request(settings: Settings, request: ScrapeRequest) -> dict[str, Any]:
    """The job params of a valid request; ScrapeRequestError naming the bad field otherwise."""
    plugin = registry(settings).scrapers.get(request.plugin)
    if plugin is None:
        known = ", ".join(sorted(registry(settings).scrapers)) or "none"
        raise ScrapeRequestError(f"plugin: no scraper plugin named {request.plugin!r} (known: {known})")
    missing = missing_credentials(settings.scraping, plugin)
    if missing and getattr(plugin, "credentials_required", False):
        raise ScrapeRequestError(
            f"plugin: {plugin.name} needs a registered application's credentials: set {' and '.join(missing)}"
            " (see docs/scraping.md)"
        )
    params = dict(request.params)
    if request.over_queries:
        if not is_query_driven(plugin.Params):
            raise ScrapeRequestError(f"over_queries: plugin {plugin.name!r} takes no query")
        params.setdefault("query", "placeholder")
    try:
        checked = msgspec.convert(params, plugin.Params, strict=False)
    except msgspec.ValidationError as exc:
        raise ScrapeRequestError(_field_error(exc)) from exc
    out = msgspec.to_builtins(checked)
    if request.over_queries:
        out.pop("query", None)
    return {"plugin": plugin.name, "params": out, "over_queries": request.over_queries}


def retry_params(job_params: dict[str, Any], job_id: int) -> dict[str, Any]:
    """Params of a scrape that re-runs only the failures of job ``job_id``."""
    return {"plugin": job_params.get("plugin"), "params": {}, "retry_of": job_id}


async def start_scrape(
    broker: Broker, settings: Settings, creator: str | None, *,
    request: ScrapeRequest | None = None, retry_of: int | None = None,
) -> JobOut:  # fmt: skip
    """The one way to start a scrape job (routes, ``furrsight scrape run``, schedules): a
    ``request`` (``ScrapeRequestError`` naming a bad field), or the failures of scrape job
    ``retry_of`` again."""
    if (request is None) == (retry_of is None):
        raise ValueError("start_scrape: give a request or the job to retry")
    if request is not None:
        params = validate_request(settings, request)
    else:
        assert retry_of is not None
        params = retry_params((await get_job(retry_of)).params, retry_of)
    return await submit(broker, settings.data_path, SCRAPE_KIND, params, creator)


async def failures(job_id: int, limit: int = 500) -> list[FailureOut]:
    rows = (
        await ScrapeUrl.select(ScrapeUrl.url, ScrapeUrl.status, ScrapeUrl.reason, ScrapeUrl.message)
        .where((ScrapeUrl.job == job_id) & (ScrapeUrl.status != "fetched"))
        .order_by(ScrapeUrl.id)
        .limit(limit)
    )
    return [msgspec.convert(r, FailureOut) for r in rows]
