"""What the scraping API takes and returns."""

from __future__ import annotations

from typing import Any

import msgspec


class ScraperOut(msgspec.Struct, kw_only=True):
    name: str
    description: str
    params: dict[str, Any]  # the JSON schema of the plugin's Params struct
    query_driven: bool  # has a ``query`` field: can run over every enabled query
    rules: str  # whose rules its requests follow: a documented API's terms, or robots.txt
    credentials_missing: list[str] = msgspec.field(default_factory=list)  # names of empty credential settings
    credentials_required: bool = False  # without them the plugin cannot run (the scrape is refused)


class BrokenOut(msgspec.Struct, kw_only=True):
    source: str
    error: str


class ScrapersOut(msgspec.Struct, kw_only=True):
    items: list[ScraperOut]
    broken: list[BrokenOut]


class ScrapeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    plugin: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    over_queries: bool = False  # run once per enabled query (the plugin's ``query`` param filled in)


class FailureOut(msgspec.Struct, kw_only=True):
    url: str
    status: str
    reason: str | None
    message: str | None
