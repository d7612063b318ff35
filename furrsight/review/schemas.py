"""The review API's shapes."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from furrsight.pairs.schemas import Id, PairPatch

Order = Literal["confidence", "oldest", "random"]
Short = Annotated[str, msgspec.Meta(max_length=200)]


class NextIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The queue: filters (no ``status``: the undecided pairs, candidate and analysed), an order,
    and pairs to leave out (the ones you skipped)."""

    status: Short | None = None
    origin: Short | None = None
    breed: Short | None = None
    service: Short | None = None
    plugin: Short | None = None
    license: Short | None = None
    min_confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    max_confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    order: Order = "confidence"
    exclude: Annotated[list[Id], msgspec.Meta(max_length=1000)] = []


class UndoIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1, le=2**31)]  # the version your change made


class BulkIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=5000)]
    change: PairPatch  # its ``version`` is ignored: each pair is changed at its own
