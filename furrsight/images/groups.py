"""What later stages ask of images: collage panels, images seen together, facts and cards.

Pair mining (a later stage) reads these instead of the images and sources tables, which this
feature owns. Every function reads in bulk (one query per call, never one per image).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

import msgspec

from furrsight.images.tables import Image, Source, Takedown

CHUNK = 900  # ids per query: under SQLite's bound-parameter limit on every build


class Panel(msgspec.Struct, frozen=True):
    id: int
    panel: str | None  # before / after, as collage detection read it
    confidence: float | None
    crop: list[int] | None


class ImageFacts(msgspec.Struct, kw_only=True):
    id: int
    phash: str | None
    near_dup_group: int | None
    parent_id: int | None
    has_panels: bool  # a split collage: its panels stand for it
    authors: list[str]
    sites: list[str]  # hosts of the pages it was seen on
    first_source: int | None  # the id of the first source row (posting order within a group)


class ImageCard(msgspec.Struct, kw_only=True):
    """One image as a pair page shows it: links, size and its first (scraped) provenance."""

    id: int
    width: int
    height: int
    title: str | None = None
    author: str | None = None
    license: str | None = None
    source_url: str | None = None
    page_url: str | None = None
    plugin: str | None = None


async def max_ids() -> tuple[int, int]:
    """The highest image id and source id now (mining's marks)."""
    rows = await Image.raw(
        "SELECT (SELECT coalesce(max(id), 0) FROM images) AS i, (SELECT coalesce(max(id), 0) FROM sources) AS s"
    )
    return int(rows[0]["i"]), int(rows[0]["s"])


async def collage_panels(after_image: int = 0) -> dict[int, list[Panel]]:
    """Split collages with a panel newer than ``after_image``: parent id → its panels, in order."""
    rows = await Image.raw(
        "SELECT id, parent_id, panel, panel_confidence, crop FROM images WHERE parent_id IN "
        "(SELECT DISTINCT parent_id FROM images WHERE parent_id IS NOT NULL AND id > {}) ORDER BY parent_id, id",
        after_image,
    )
    out: dict[int, list[Panel]] = defaultdict(list)
    for r in rows:
        crop = msgspec.json.decode(r["crop"]) if isinstance(r["crop"], str | bytes) else r["crop"]
        out[r["parent_id"]].append(Panel(r["id"], r["panel"], r["panel_confidence"], crop))
    return dict(out)


async def seen_together(after_source: int = 0, max_group: int = 200) -> dict[str, list[int]]:
    """Groups (one post, gallery or page: the sources' group key) with a source newer than
    ``after_source``: group key → distinct image ids in the order they were seen. Groups larger
    than ``max_group`` images (a whole site's index page) are left out."""
    rows = await Source.raw(
        "SELECT group_key, image, min(id) AS first FROM sources WHERE group_key IN "
        "(SELECT DISTINCT group_key FROM sources WHERE group_key IS NOT NULL AND id > {}) "
        "GROUP BY group_key, image ORDER BY group_key, first",
        after_source,
    )
    groups: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        groups[r["group_key"]].append(r["image"])
    return {k: v for k, v in groups.items() if 2 <= len(v) <= max_group}


async def facts(ids: list[int]) -> dict[int, ImageFacts]:
    out: dict[int, ImageFacts] = {}
    for lo in range(0, len(ids), CHUNK):
        out.update(await _facts(ids[lo : lo + CHUNK]))
    return out


async def _facts(ids: list[int]) -> dict[int, ImageFacts]:
    if not ids:
        return {}
    marks = ",".join("{}" for _ in ids)
    images = await Image.raw(
        f"SELECT id, phash, near_dup_group, parent_id, "  # noqa: S608
        f"EXISTS (SELECT 1 FROM images c WHERE c.parent_id = images.id) AS has_panels "
        f"FROM images WHERE id IN ({marks})",
        *ids,
    )
    sources = await Source.raw(
        f"SELECT id, image, author, page_url, url FROM sources WHERE image IN ({marks}) ORDER BY id",  # noqa: S608
        *ids,
    )
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in sources:
        by_image[s["image"]].append(s)
    out = {}
    for r in images:
        seen = by_image.get(r["id"], [])
        sites = {urlsplit(s["page_url"] or s["url"] or "").hostname for s in seen} - {None, ""}
        out[r["id"]] = ImageFacts(
            id=r["id"],
            phash=r["phash"],
            near_dup_group=r["near_dup_group"],
            parent_id=r["parent_id"],
            has_panels=bool(r["has_panels"]),
            authors=sorted({s["author"] for s in seen if s["author"]}),
            sites=sorted(str(s) for s in sites),
            first_source=seen[0]["id"] if seen else None,
        )
    return out


async def cards(ids: list[int]) -> dict[int, ImageCard]:
    """Cards of ``ids``: size, and the first source that says where the image came from."""
    if not ids:
        return {}
    marks = ",".join("{}" for _ in ids)
    images = await Image.raw(f"SELECT id, width, height FROM images WHERE id IN ({marks})", *ids)  # noqa: S608
    sources = await Source.raw(
        f"SELECT image, title, author, license, url, page_url, plugin, kind FROM sources "  # noqa: S608
        f"WHERE image IN ({marks}) ORDER BY (url IS NULL AND page_url IS NULL), id",
        *ids,
    )
    return _cards(images, sources)


def cards_in(conn: sqlite3.Connection, ids: list[int]) -> dict[int, ImageCard]:
    """``cards`` on a plain connection, in the caller's read (``Database.read_call``)."""
    if not ids:
        return {}
    marks = ",".join("?" for _ in ids)
    images = conn.execute(f"SELECT id, width, height FROM images WHERE id IN ({marks})", ids).fetchall()  # noqa: S608
    sources = conn.execute(
        f"SELECT image, title, author, license, url, page_url, plugin, kind FROM sources "  # noqa: S608
        f"WHERE image IN ({marks}) ORDER BY (url IS NULL AND page_url IS NULL), id",
        ids,
    ).fetchall()
    return _cards([dict(r) for r in images], [dict(r) for r in sources])


def _cards(images: list[dict[str, Any]], sources: list[dict[str, Any]]) -> dict[int, ImageCard]:
    first: dict[int, dict[str, Any]] = {}
    for s in sources:
        first.setdefault(s["image"], s)
    out = {}
    for r in images:
        s = first.get(r["id"], {})
        out[r["id"]] = ImageCard(
            id=r["id"],
            width=r["width"],
            height=r["height"],
            title=s.get("title"),
            author=s.get("author"),
            license=s.get("license"),
            source_url=s.get("url"),
            page_url=s.get("page_url"),
            plugin=s.get("plugin"),
        )
    return out


def ids_from_sources(plugin: str | None = None, license: str | None = None) -> Any:
    """A sub-query of image ids seen through ``plugin`` and/or under ``license`` (for filters)."""
    query = Source.select(Source.image)
    if plugin:
        query = query.where((Source.plugin == plugin) | (Source.kind == plugin))
    if license:
        query = query.where(Source.license == license)
    return query


def hamming(a: str | None, b: str | None) -> int | None:
    """Bits that differ between two hex perceptual hashes (None when one is missing)."""
    if not a or not b:
        return None
    return (int(a, 16) ^ int(b, 16)).bit_count()


async def queries_of(ids: list[int]) -> dict[int, set[str]]:
    """The search queries that found each of ``ids``."""
    out: dict[int, set[str]] = defaultdict(set)
    for lo in range(0, len(ids), 900):
        rows = await Source.select(Source.image, Source.query).where(
            Source.image.is_in(ids[lo : lo + 900]) & Source.query.is_not_null()
        )
        for r in rows:
            out[r["image"]].add(r["query"])
    return dict(out)


async def files(ids: list[int]) -> dict[int, str]:
    """The SHA-256 (the store's address) of each of ``ids``."""
    out: dict[int, str] = {}
    for lo in range(0, len(ids), CHUNK):
        for r in await Image.select(Image.id, Image.sha256).where(Image.id.is_in(ids[lo : lo + CHUNK])):
            out[r["id"]] = r["sha256"]
    return out


class ImageProvenance(msgspec.Struct, kw_only=True):
    """What an export needs of one image: its stored file, what ingest measured, every group it
    was seen in, and its first provenance (the first source with a URL, as ``cards`` picks)."""

    id: int
    sha256: str
    format: str
    width: int
    height: int
    phash: str | None
    near_dup_group: int | None
    parent_id: int | None
    group_keys: list[str]
    title: str | None = None
    author: str | None = None
    license: str | None = None
    source_url: str | None = None
    page_url: str | None = None
    plugin: str | None = None


async def provenance(ids: list[int]) -> dict[int, ImageProvenance]:
    """Provenance of many images: two queries per ``CHUNK`` ids, never one per image."""
    out: dict[int, ImageProvenance] = {}
    for lo in range(0, len(ids), CHUNK):
        out.update(await _provenance(ids[lo : lo + CHUNK]))
    return out


async def _provenance(ids: list[int]) -> dict[int, ImageProvenance]:
    if not ids:
        return {}
    marks = ",".join("{}" for _ in ids)
    images = await Image.raw(
        f"SELECT id, sha256, format, width, height, phash, near_dup_group, parent_id FROM images "  # noqa: S608
        f"WHERE id IN ({marks})",
        *ids,
    )
    sources = await Source.raw(
        f"SELECT image, title, author, license, url, page_url, plugin, group_key FROM sources "  # noqa: S608
        f"WHERE image IN ({marks}) ORDER BY (url IS NULL AND page_url IS NULL), id",
        *ids,
    )
    first: dict[int, dict[str, Any]] = {}
    keys: dict[int, set[str]] = defaultdict(set)
    for s in sources:
        first.setdefault(s["image"], s)
        if s["group_key"]:
            keys[s["image"]].add(s["group_key"])
    out = {}
    for r in images:
        s = first.get(r["id"], {})
        out[r["id"]] = ImageProvenance(
            **r,
            group_keys=sorted(keys.get(r["id"], ())),
            title=s.get("title"),
            author=s.get("author"),
            license=s.get("license"),
            source_url=s.get("url"),
            page_url=s.get("page_url"),
            plugin=s.get("plugin"),
        )
    return out


async def taken_down(ids: list[int] | None = None) -> dict[int, str]:
    """Images taken down (all, or those among ``ids``): id -> the reason."""
    query = Takedown.select(Takedown.image, Takedown.reason)
    if ids is not None:
        out: dict[int, str] = {}
        for lo in range(0, len(ids), CHUNK):
            rows = await query.where(Takedown.image.is_in(ids[lo : lo + CHUNK]))
            out.update({r["image"]: r["reason"] for r in rows})
        return out
    return {r["image"]: r["reason"] for r in await query}
