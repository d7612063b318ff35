"""The rows ingest writes, as operations the recorder runs in its transaction (see recorder.py).

Columns and tables are the piccolo tables' (``tables.py``); timestamps are written the way
piccolo writes them (UTC, ``str(datetime)``) so that both read them back alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Callable

from furrsight.images.neardup import assign_group, leave_group
from furrsight.images.recorder import Tx
from furrsight.images.schemas import Provenance

SOURCE_FIELDS = [f for f in Provenance.__struct_fields__ if f not in ("kind", "job_id")]
SOURCE_INSERT = (
    f"INSERT INTO sources (image, kind, job, seen_at, {', '.join(SOURCE_FIELDS)}) "  # noqa: S608 (our own names)
    f"VALUES (?, ?, ?, ?, {', '.join('?' * len(SOURCE_FIELDS))})"
)


def now() -> str:
    return str(datetime.now(UTC))


def flags_text(flags: list[str]) -> str:
    return "," + ",".join(flags) + "," if flags else ""


@dataclass(frozen=True)
class PanelOf:
    """What makes an ingest a collage panel: its parent and where it was cut."""

    parent_id: int
    crop: list[int]
    panel: str
    confidence: float


@dataclass(frozen=True)
class NewImage:
    """Everything the row of a new image holds (the CPU steps worked it out)."""

    sha256: str
    format: str
    mime: str
    width: int
    height: int
    bytes: int
    state: str
    reason: str | None
    phash: str | None
    blur: float | None
    flags: list[str]
    panel_of: PanelOf | None


@dataclass(frozen=True)
class Recorded:
    image_id: int
    state: str
    duplicate: bool
    group: int | None = None


def find(tx: Tx, sha256: str) -> tuple[int, str] | None:
    row = tx.conn.execute("SELECT id, state FROM images WHERE sha256 = ?", (sha256,)).fetchone()
    return (row[0], row[1]) if row else None


def add_source(tx: Tx, image_id: int, source: Provenance, new: bool = False) -> None:
    """One row per sighting; a redelivered job seeing the same file again adds none (an image
    ``new`` in this transaction has no sightings to look through)."""
    values = [getattr(source, f) for f in SOURCE_FIELDS]
    if source.job_id is not None and not new:
        same = tx.conn.execute(
            "SELECT 1 FROM sources WHERE image = ? AND kind = ? AND job IS ? AND file_name IS ? AND url IS ?",
            (image_id, source.kind, source.job_id, source.file_name, source.url),
        ).fetchone()
        if same:
            return
    tx.conn.execute(SOURCE_INSERT, [image_id, source.kind, source.job_id, now(), *values])


def adopt(tx: Tx, image_id: int, panel: PanelOf) -> None:
    """A panel whose bytes already exist as an image: link it to its collage if it has no parent."""
    tx.conn.execute(
        "UPDATE images SET parent_id = ?, crop = ?, panel = ?, panel_confidence = ? "
        "WHERE id = ? AND parent_id IS NULL AND id != ?",
        (panel.parent_id, json.dumps(panel.crop), panel.panel, panel.confidence, image_id, panel.parent_id),
    )


def sighting(sha256: str, source: Provenance, panel_of: PanelOf | None = None) -> Callable[[Tx], Recorded | None]:
    """The operation for bytes already stored: add the source; None if they are not stored."""

    def op(tx: Tx) -> Recorded | None:
        found = find(tx, sha256)
        if found is None:
            return None
        add_source(tx, found[0], source)
        if panel_of:
            adopt(tx, found[0], panel_of)
        return Recorded(found[0], found[1], duplicate=True)

    return op


def record(new: NewImage, source: Provenance, distance: int) -> Callable[[Tx], Recorded]:
    """The operation that records a new image (or a sighting, if another run stored it first)."""

    def op(tx: Tx) -> Recorded:
        again = sighting(new.sha256, source, new.panel_of)(tx)
        if again is not None:
            return again
        p = new.panel_of
        cursor = tx.conn.execute(
            "INSERT INTO images (sha256, format, mime, width, height, bytes, state, created_at, reason, phash, "
            "near_dup_group, flags, blur, parent_id, crop, panel, panel_confidence) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
            (
                new.sha256, new.format, new.mime, new.width, new.height, new.bytes, new.state, now(), new.reason,
                new.phash, flags_text(new.flags), new.blur, p.parent_id if p else None,
                json.dumps(p.crop) if p else None, p.panel if p else None, p.confidence if p else None,
            ),
        )  # fmt: skip
        image_id = int(cursor.lastrowid or 0)
        group = assign_group(tx.conn, tx.index, image_id, new.phash, distance) if new.phash else None
        add_source(tx, image_id, source, new=True)
        return Recorded(image_id, new.state, duplicate=False, group=group)

    return op


def set_state(image_id: int, state: str) -> Callable[[Tx], None]:
    def op(tx: Tx) -> None:
        tx.conn.execute("UPDATE images SET state = ? WHERE id = ?", (state, image_id))

    return op


def reanalysed(image_id: int, new: NewImage, distance: int) -> Callable[[Tx], int | None]:
    """Re-processing: the derived fields of an existing image, and its group found again."""

    def op(tx: Tx) -> int | None:
        leave_group(tx.conn, image_id)
        tx.conn.execute(
            "UPDATE images SET state = ?, reason = ?, width = ?, height = ?, phash = ?, blur = ?, flags = ? "
            "WHERE id = ?",
            (new.state, new.reason, new.width, new.height, new.phash, new.blur, flags_text(new.flags), image_id),
        )
        return assign_group(tx.conn, tx.index, image_id, new.phash, distance) if new.phash else None

    return op


def failed(image_id: int, reason: str) -> Callable[[Tx], None]:
    def op(tx: Tx) -> None:
        tx.conn.execute("UPDATE images SET state = 'failed', reason = ? WHERE id = ?", (reason, image_id))

    return op
