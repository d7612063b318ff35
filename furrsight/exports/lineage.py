"""A version's lineage: the earlier versions its splits are anchored on (``base``: the newest
version when the request names none, ``0`` for none), and its splits derived again from its
record — a version is reproducible only if that gives the stored splits."""

from __future__ import annotations

from typing import Any

from furrsight.exports import stratify
from furrsight.exports.tables import DatasetVersion, VersionItem


async def newest_version() -> int:
    """The default ``base``: the newest version's id (0 when there is none)."""
    row = await DatasetVersion.select(DatasetVersion.id).order_by(DatasetVersion.id, ascending=False).first()
    return int(row["id"]) if row else 0


async def anchors(base: int, seed: str, ratios: tuple[float, float, float]) -> dict[int, str]:
    """pair id -> its split in the newest version up to ``base`` that held it and was split with
    the same seed and ratios (versions are immutable, so this is a function of ``base``)."""
    if not base:
        return {}
    rows = await DatasetVersion.select(DatasetVersion.id, DatasetVersion.selection).where(
        DatasetVersion.id <= base
    ).output(load_json=True)  # fmt: skip
    alike = [r["id"] for r in rows if same_split_rules(r["selection"], seed, ratios)]
    if not alike:
        return {}
    # One row per pair: with max(), SQLite takes the bare columns from the row holding the maximum
    # (its documented "bare columns in an aggregate query"), i.e. the newest version's split.
    marks = ", ".join("{}" for _ in alike)  # placeholders only: the ids are passed as values
    found = await VersionItem.raw(
        f"SELECT pair_id, split, max(version) AS newest FROM dataset_version_items WHERE version IN ({marks})"  # noqa: S608
        " GROUP BY pair_id",
        *alike,
    )
    return {int(r["pair_id"]): r["split"] for r in found}


def same_split_rules(selection: dict[str, Any], seed: str, ratios: tuple[float, float, float]) -> bool:
    return selection.get("seed") == seed and [float(r) for r in selection.get("ratios", [])] == list(ratios)


async def derive_splits(version_id: int) -> dict[int, str]:
    """A version's splits derived again from its record alone (components, breeds, base, seed,
    ratios): equal to the stored ones, or the version is not reproducible."""
    row = (
        await DatasetVersion.select(DatasetVersion.selection)
        .where(DatasetVersion.id == version_id)
        .first()
        .output(load_json=True)
    )
    assert row is not None, version_id
    selection = row["selection"]
    items = await VersionItem.select(VersionItem.pair_id, VersionItem.component, VersionItem.labels).where(
        VersionItem.version == version_id
    ).output(load_json=True)  # fmt: skip
    ratios = tuple(float(r) for r in selection["ratios"])
    held = await anchors(int(selection.get("base", 0)), selection["seed"], ratios)  # type: ignore[arg-type]
    keys = {int(i["pair_id"]): i["component"] for i in items}
    breeds = {int(i["pair_id"]): i["labels"]["breed"] for i in items}
    return stratify.stratify(keys, breeds, held, selection["seed"], ratios)  # type: ignore[arg-type]
