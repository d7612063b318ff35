"""What the queries API takes and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


class QueryIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    breed: str | None = None
    service: str | None = None
    language: str = "en"
    enabled: bool = True


class QueryPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool


class QueryOut(msgspec.Struct, kw_only=True):
    id: int
    text: str
    breed: str | None
    service: str | None
    language: str
    origin: str
    enabled: bool
    created_at: datetime
    images: int = 0  # images its scrapes yielded
    accepted_pairs: int = 0  # accepted pairs with an image this query found (the pairs feature counts)


class GenerateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    breeds: Annotated[list[str], msgspec.Meta(min_length=1)]
    services: Annotated[list[str], msgspec.Meta(min_length=1)]
    languages: list[str] = msgspec.field(default_factory=lambda: ["en"])
    count: Annotated[int, msgspec.Meta(ge=1, le=500)] = 20
