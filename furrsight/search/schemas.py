"""What search answers: hits, pages of hits, near-duplicate clusters, breed tags."""

from __future__ import annotations

from typing import Annotated

import msgspec


class Hit(msgspec.Struct, kw_only=True):
    id: int
    score: float  # cosine similarity, 1.0 = same direction


class HitPage(msgspec.Struct, kw_only=True):
    model: str
    items: list[Hit]


class Clusters(msgspec.Struct, kw_only=True):
    model: str
    max_distance: float
    clusters: list[list[int]]  # image ids, each cluster of 2 or more
    images: int = 0  # vectors looked at
    job_id: int | None = None  # the job that computed them
    computed_at: str | None = None  # ISO 8601, UTC


class ClusterRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    model: str | None = None  # default: setting search.model
    # cosine distance, 0-2 (default: setting); the schema's minimum 0 is spelled out (Litestar drops a 0 bound)
    max_distance: Annotated[float, msgspec.Meta(ge=0, le=2, extra_json_schema={"extra": {"minimum": 0}})] | None = None


class TaggedImage(msgspec.Struct, kw_only=True):
    id: int
    breed: str | None
    confidence: float
    dog_probability: float
    is_dog: bool


class TaggedPage(msgspec.Struct, kw_only=True):
    items: list[TaggedImage]
    next_cursor: int | None


class EmbedRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    model: str | None = None
