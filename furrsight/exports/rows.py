"""One exported pair as every format sees it: a key without dots, its fields, both image files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

IMAGE_FIELDS = ("source_url", "page_url", "author", "license", "license_url", "attribution")
CONFIDENCES = ("breed_confidence", "same_dog_confidence", "order_confidence")


@dataclass
class Row:
    key: str  # p00000042: no dots (WebDataset splits a sample's key at the first dot)
    split: str
    item: dict[str, Any]  # the version's frozen item
    label: int | None  # the breed's class label index
    before: bytes
    after: bytes


def key_of(pair_id: int) -> str:
    return f"p{pair_id:08d}"


def fields(row: Row, breed_as: str = "label") -> dict[str, Any]:
    """The columns besides the images: ``breed`` as the class index (``label``) or its name."""
    labels = row.item["labels"]
    out: dict[str, Any] = {
        "pair_id": row.item["pair_id"],
        "breed": row.label if breed_as == "label" else labels["breed"],
        "services": list(labels["services"]),
        "origin": labels["origin"],
        "caption": labels["caption"],
        "breed_source": labels["breed_source"],
    }
    out.update({name: labels[name] for name in CONFIDENCES})
    for side in ("before", "after"):
        out.update({f"{side}_{name}": row.item[side][name] for name in IMAGE_FIELDS})
    return out


class Writer(Protocol):
    name: str
    finished: list[Path]  # files closed since the exporter last took them (to fsync)

    def begin_split(self, split: str, count: int) -> None: ...
    def add(self, row: Row) -> None: ...
    def end_split(self) -> None: ...
