"""Images, their sources, and what ingest says about one file."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec


class Provenance(msgspec.Struct, kw_only=True):
    """Where an image was seen. Upload and folder import keep the original name or path."""

    kind: Literal["upload", "import", "scrape", "split"]  # split: a panel cut from a collage
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


class ChildOut(msgspec.Struct, kw_only=True):
    id: int
    panel: str | None  # before / after
    panel_confidence: float | None
    crop: list[int] | None


class ImageOut(msgspec.Struct, kw_only=True):
    id: int
    sha256: str
    format: str
    mime: str
    width: int
    height: int
    bytes: int
    state: str
    reason: str | None = None
    created_at: datetime
    flags: list[str] = []
    blur: float | None = None
    phash: str | None = None
    near_dup_group: int | None = None
    parent_id: int | None = None
    crop: list[int] | None = None  # [left, top, right, bottom] in the parent's upright pixels
    panel: str | None = None
    panel_confidence: float | None = None
    split_mode: str | None = None
    children: list[ChildOut] = []
    sources: list[SourceOut] = []


class ImagePage(msgspec.Struct, kw_only=True):
    items: list[ImageOut]
    next_cursor: int | None


class IngestResult(msgspec.Struct, kw_only=True):
    outcome: Literal["new", "duplicate", "refused"]
    image_id: int | None = None
    reason: str | None = None  # a short code when refused: not_an_image, empty, too_large, ...
    message: str | None = None  # the same in a sentence
    state: str | None = None  # the image's state after ingest (new images)
    flags: list[str] = []
    near_dup_group: int | None = None
    children: list[int] = []  # panels cut from a detected collage


class SplitRequest(msgspec.Struct, forbid_unknown_fields=True):
    direction: Literal["vertical", "horizontal"]  # vertical: a seam top to bottom (side by side panels)
    position: Annotated[float, msgspec.Meta(gt=0.05, lt=0.95)] = 0.5  # where the seam is, 0-1
    first: Literal["before", "after"] = "before"  # what the left/top panel shows


class ReprocessRequest(msgspec.Struct, forbid_unknown_fields=True):
    state: Literal["all", "stored", "processed", "failed"] = "all"


class ImportRequest(msgspec.Struct, forbid_unknown_fields=True):
    path: Annotated[str, msgspec.Meta(description="a folder below one of the import roots")]
