"""Counts of images for the dashboard: by state, by source plugin (or kind) and by licence."""

from __future__ import annotations

from furrsight.images.tables import Image, Source


async def image_counts() -> dict[str, dict[str, int]]:
    """``state``, ``plugin`` and ``license`` → value → images (an image seen through two plugins
    counts under each; no licence counts as ``unknown``)."""
    states = await Image.raw("SELECT state AS k, count(*) AS n FROM images GROUP BY state")
    plugins = await Source.raw(
        "SELECT coalesce(plugin, kind) AS k, count(DISTINCT image) AS n FROM sources GROUP BY k ORDER BY n DESC"
    )
    licences = await Source.raw(
        "SELECT coalesce(license, 'unknown') AS k, count(DISTINCT image) AS n FROM sources GROUP BY k ORDER BY n DESC"
    )
    return {
        "state": {r["k"]: r["n"] for r in states},
        "plugin": {r["k"]: r["n"] for r in plugins},
        "license": {r["k"]: r["n"] for r in licences},
    }
