"""The shipped vocabulary: ``data/breeds.tsv`` and ``data/services.tsv``, read as entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("data")


def _rows(name: str, columns: int) -> list[list[str]]:
    rows = []
    for number, line in enumerate((DATA / name).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) != columns:
            raise ValueError(f"{name} line {number}: {len(cells)} columns, expected {columns}")
        rows.append([c.strip() for c in cells])
    return rows


def _aliases(cell: str) -> list[str]:
    return [a.strip() for a in cell.split(";") if a.strip()]


def shipped_breeds() -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "name": name,
            "size": size,
            "coat": coat,
            "fci_group": None if fci == "-" else int(fci),
            "aliases": _aliases(aliases),
        }
        for key, name, size, coat, fci, aliases in _rows("breeds.tsv", 6)
    ]


def shipped_services() -> list[dict[str, Any]]:
    return [
        {"key": key, "name": name, "description": description, "aliases": _aliases(aliases), "position": position}
        for position, (key, name, description, aliases) in enumerate(_rows("services.tsv", 4))
    ]
