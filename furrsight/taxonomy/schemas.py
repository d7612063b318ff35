"""The taxonomy's API shapes."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Kind = Literal["breeds", "services"]
Size = Literal["toy", "small", "medium", "large", "giant"]
Coat = Literal["curly", "double", "wire", "silky", "smooth", "hairless", "combination"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=96)]
Alias = Annotated[str, msgspec.Meta(min_length=1, max_length=96)]


class BreedOut(msgspec.Struct, kw_only=True):
    id: int
    key: str
    name: str
    aliases: list[str]
    size: str
    coat: str
    fci_group: int | None
    retired: bool
    merged_into: int | None


class ServiceOut(msgspec.Struct, kw_only=True):
    id: int
    key: str
    name: str
    description: str
    aliases: list[str]
    position: int
    retired: bool
    merged_into: int | None


class EntryIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new breed or service (admin). Breed fields are ignored for services and vice versa."""

    name: Name
    aliases: list[Alias] = msgspec.field(default_factory=list)
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""
    size: Size = "medium"
    coat: Coat = "combination"
    fci_group: Annotated[int, msgspec.Meta(ge=1, le=10)] | None = None


class EntryPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Rename (the old name becomes an alias), change fields, retire or bring back (admin)."""

    name: Name | None = None
    aliases: list[Alias] | None = None
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    size: Size | None = None
    coat: Coat | None = None
    fci_group: Annotated[int, msgspec.Meta(ge=1, le=10)] | None = None
    retired: bool | None = None


class MergeIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    into: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]  # web.api.MAX_INT: exact in a JSON number


class MergeOut(msgspec.Struct, kw_only=True):
    merged: int
    into: int
    labels_moved: int  # labels of later features (pairs) moved to ``into``


class Resolution(msgspec.Struct, kw_only=True):
    """What free text resolved to: an entry, or ``id=None`` ("unknown") below the threshold."""

    text: str
    id: int | None
    name: str | None
    score: float  # 0-100: 100 for a name or alias, the fuzzy score otherwise
    matched: str | None  # the name or alias it matched
