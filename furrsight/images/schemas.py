"""Images, their sources, and what ingest says about one file."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec


class Provenance(msgspec.Struct, kw_only=True):
    """Where an image was seen. Upload and folder import keep the original name or path."""

    kind: Literal["upload", "import", "scrape"]
    url: str | None = None
    page_url: str | None = None
    file_name: str | None = None
    title: str | None = None
    alt_text: str | None = None
    author: str | None = None
    license: str | None = None
    plugin: str | None = None
    query: str | None = None
    group_key: str | None = None
    job_id: int | None = None


class SourceOut(Provenance, kw_only=True):
    seen_at: datetime


class ImageOut(msgspec.Struct, kw_only=True):
    id: int
    sha256: str
    format: str
    mime: str
    width: int
    height: int
    bytes: int
    state: str
    created_at: datetime
    sources: list[SourceOut] = []


class ImagePage(msgspec.Struct, kw_only=True):
    items: list[ImageOut]
    next_cursor: int | None


class IngestResult(msgspec.Struct, kw_only=True):
    outcome: Literal["new", "duplicate", "refused"]
    image_id: int | None = None
    reason: str | None = None  # a short code when refused: not_an_image, empty, too_large, ...
    message: str | None = None  # the same in a sentence


class ImportRequest(msgspec.Struct, forbid_unknown_fields=True):
    path: str
