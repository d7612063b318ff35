"""What the scraping API takes and returns."""

from __future__ import annotations

from typing import Any

import msgspec


class ScraperOut(msgspec.Struct, kw_only=True):
    name: str
    description: str
    params: dict[str, Any]  # the JSON schema of the plugin's Params struct
    query_driven: bool  # has a ``query`` field: can run over every enabled query


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
