"""The dataset API's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Format = Literal["hf-parquet", "imagefolder", "webdataset"]
FORMATS: tuple[str, ...] = ("hf-parquet", "imagefolder", "webdataset")
Ratio = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=96)]


class VersionRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new version: accepted pairs, narrowed by the filters, under the allowed licences."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
    notes: Annotated[str, msgspec.Meta(max_length=4000)] = ""
    breed: Short | None = None
    service: Short | None = None
    origin: Literal["collage", "post", "similar", "manual"] | None = None
    min_confidence: Ratio | None = None
    licenses: list[Short] | None = None  # licence families or ids; default: the `exports.licenses` setting
    allow_unknown_license: bool = False
    ratios: Annotated[list[Ratio], msgspec.Meta(min_length=3, max_length=3)] | None = None  # train, validation, test
    seed: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    # the version whose splits this one keeps (default: the newest version; 0: none, a fresh split)
    base: Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)] | None = None


class VersionOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    notes: str
    created_at: datetime
    created_by: str | None
    content_hash: str
    counts: dict[str, Any]
    selection: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    report: dict[str, Any] = {}
    class_names: list[str] = []
    excluded: list[dict[str, Any]] = []


class VersionPage(msgspec.Struct, kw_only=True):
    items: list[VersionOut]


class ItemOut(msgspec.Struct, kw_only=True):
    pair_id: int
    split: str
    component: str
    before_id: int
    after_id: int
    labels: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]


class ItemPage(msgspec.Struct, kw_only=True):
    items: list[ItemOut]
    next_cursor: int | None


class Relabel(msgspec.Struct, kw_only=True):
    pair_id: int
    fields: dict[str, list[Any]]  # field -> [in a, in b]


class DiffOut(msgspec.Struct, kw_only=True):
    a: int
    b: int
    added: list[int]
    removed: list[int]
    relabelled: list[Relabel]
    moved: list[int]  # pairs in both whose split differs


class ExportRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    format: Format


class ExportOut(msgspec.Struct, kw_only=True):
    id: int
    version_id: int
    format: str
    status: str
    job_id: int | None
    files: int
    bytes: int
    pairs: int
    left_out: list[dict[str, Any]]
    report: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    download_url: str | None


class TakedownRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=2000)]


class TakedownOut(msgspec.Struct, kw_only=True):
    image_id: int
    reason: str
    versions: list[int]  # versions that contain it
    exports: list[int]  # exports on disk that contain it (rebuild them without it)
    purged: bool = False
