"""The pairs API's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Status = Literal["candidate", "analysed", "accepted", "rejected", "analysis_failed"]
Origin = Literal["collage", "post", "similar", "manual"]
LabelSource = Literal["model", "vlm", "human"]
RejectReason = Literal[
    "not_same_dog", "not_before_after", "order_unclear", "poor_quality", "duplicate", "licence", "not_a_dog", "other"
]
STATUSES: tuple[str, ...] = ("candidate", "analysed", "accepted", "rejected", "analysis_failed")
ORIGINS: tuple[str, ...] = ("collage", "post", "similar", "manual")
REJECT_REASONS: dict[str, str] = {
    "not_same_dog": "not the same dog",
    "not_before_after": "not a grooming before/after",
    "order_unclear": "the order cannot be told",
    "poor_quality": "poor quality",
    "duplicate": "a duplicate of another pair",
    "licence": "licence",
    "not_a_dog": "not a dog",
    "other": "other (see the note)",
}
Id = Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]  # web.api.MAX_INT: exact in a JSON number and the schema
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class ServiceLabel(msgspec.Struct, kw_only=True):
    id: int
    name: str
    source: str
    confidence: float | None = None


class PairImage(msgspec.Struct, kw_only=True):
    """One side of a pair as the pages and the API show it: links and provenance."""

    id: int
    thumb_url: str
    file_url: str
    width: int | None = None
    height: int | None = None
    title: str | None = None
    author: str | None = None
    license: str | None = None
    source_url: str | None = None
    page_url: str | None = None
    plugin: str | None = None


class PairOut(msgspec.Struct, kw_only=True):
    id: int
    before_id: int
    after_id: int
    origin: str
    status: str
    version: int
    breed: str | None = None
    breed_id: int | None = None
    breed_source: str | None = None
    breed_confidence: float | None = None
    services: list[ServiceLabel] = []
    same_dog: bool | None = None
    same_dog_confidence: float | None = None
    is_grooming: bool | None = None
    order_source: str | None = None
    order_confidence: float | None = None
    caption: str | None = None
    caption_source: str | None = None
    reason: str | None = None
    reject_reason: str | None = None
    note: str | None = None
    group_key: str | None = None
    mining_score: float | None = None
    confidence: float | None = None  # the weakest label: the review queue starts with the least sure
    model: str | None = None
    prompt_version: str | None = None
    analysis: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    reviewed_by: str | None = None
    before: PairImage | None = None
    after: PairImage | None = None


class PairPage(msgspec.Struct, kw_only=True):
    items: list[PairOut]
    next_cursor: int | None
    counts: dict[str, int]  # pairs per status under the same filters (status itself aside)


class PairIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A pair made by a person (origin ``manual``); it starts as ``candidate``."""

    before_id: Id
    after_id: Id


class PairPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A change to a pair, at the ``version`` it was read at (a stale one is 409)."""

    version: Annotated[int, msgspec.Meta(ge=1, le=2**31)]
    swap: bool = False
    status: Literal["candidate", "accepted", "rejected"] | None = None
    reject_reason: RejectReason | None = None
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    breed: Annotated[str, msgspec.Meta(max_length=96)] | None = None  # a name or alias; "" clears it
    services: list[Annotated[str, msgspec.Meta(max_length=96)]] | None = None  # the full new set
    add_services: list[Annotated[str, msgspec.Meta(max_length=96)]] = []
    remove_services: list[Annotated[str, msgspec.Meta(max_length=96)]] = []
    caption: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class HistoryOut(msgspec.Struct, kw_only=True):
    id: int
    at: datetime
    user: str | None
    field: str
    old: Any
    new: Any
    via: str
    batch: str | None = None


class MineRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    full: bool = False  # mine everything again (existing pairs are kept, not duplicated)


class AnalyseRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which pairs to analyse: by default every ``candidate`` (and ``analysis_failed`` on request)."""

    status: list[Literal["candidate", "analysed", "analysis_failed", "rejected"]] = msgspec.field(
        default_factory=lambda: ["candidate"]
    )
    origin: Origin | None = None
    ids: list[Id] = []
    prompt_version: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[a-z0-9._-]+$")] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
