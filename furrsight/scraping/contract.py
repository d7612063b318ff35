"""The scraper plugin contract: everything a plugin may import, in one public module.

A plugin is a class with a ``name``, a ``description``, a msgspec ``Params`` struct (the UI
renders its form from it, the API validates against it) and an async generator ``scrape`` that
yields :class:`Candidate` records. A plugin never touches the database, the file store or its
own HTTP session: the host hands it a frozen :class:`ScrapeContext` with the polite HTTP client,
a logger, the plugin's own settings and a progress callback, then fetches, deduplicates and
stores what it yields.

Third-party plugins are packages exposing a class in the ``furrsight.scrapers`` entry-point
group; built-ins live in the ``plugins/`` folder. The README's "Writing a plugin" has a complete example.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec

from furrsight.scraping.http import FetchError, PoliteClient, Response

__all__ = [
    "Candidate",
    "FetchError",
    "NoParams",
    "PoliteClient",
    "Response",
    "ScrapeContext",
    "Scraper",
]


class Candidate(msgspec.Struct, kw_only=True):
    """One image a plugin found: a URL to fetch, or the bytes themselves, with provenance."""

    url: str | None = None  # the image's own URL (fetched by the host)
    data: bytes | None = None  # or the bytes, when the plugin already has them (local files)
    page_url: str | None = None  # the page or post where it was seen
    title: str | None = None
    alt_text: str | None = None
    author: str | None = None
    license: str | None = None
    query: str | None = None  # the search query that found it
    group_key: str | None = None  # ties images found together: one post, one page, one gallery
    file_name: str | None = None
    # the service's own licence fields exactly as given (Commons: LicenseShortName, LicenseUrl,
    # AttributionRequired, Credit); kept with the scrape's record of the URL
    license_terms: dict[str, str] | None = None


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    """Params of a plugin that takes none."""


@dataclass(frozen=True)
class ScrapeContext:
    """What the host gives a plugin for one run. Frozen: a plugin reads it, never changes it."""

    http: PoliteClient
    log: logging.Logger
    settings: dict[str, Any] = field(default_factory=dict, repr=False)  # this plugin's own (may hold secrets)
    progress: Callable[[str], None] = lambda message: None  # say what the plugin is doing
    count: Callable[[str, int], None] = lambda name, n: None  # add n to a job counter (e.g. no_images:video)
    job_id: int | None = None
    base_urls: dict[str, str] = field(default_factory=dict)  # service base URLs from settings
    import_roots: tuple[str, ...] = ()  # folders a plugin may read on the server


class Scraper:
    """Base class of scraper plugins (subclass it, or match its shape)."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[msgspec.Struct]] = NoParams
    # Whose rules its requests follow, in a sentence for the plugins page: a documented API's own
    # terms (``http.get(..., api=True)``) or robots.txt (pages and image downloads).
    rules: ClassVar[str] = "Pages and image downloads follow each site's robots.txt."
    # ctx.settings keys holding a registered application's credentials (from the settings
    # ``scraping.<name>_<key>``, or the plugin's ``[scraping.plugin_settings.<name>]`` table);
    # the plugins page says when they are missing, and refuses the scrape if they are required.
    credentials: ClassVar[tuple[str, ...]] = ()
    credentials_required: ClassVar[bool] = False

    def scrape(self, params: Any, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        raise NotImplementedError
