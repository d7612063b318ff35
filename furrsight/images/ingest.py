"""The one path every image takes in: check, hash, store once, thumbnail, record.

Order matters for crash safety: the original and its thumbnail are written (atomically) before
the row that points at them, so a crash leaves at worst an unreferenced file, which the sanity
check removes, never a row without its file.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass

from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from furrsight.db.piccolo_conf import DATABASE
from furrsight.images.schemas import IngestResult, Provenance
from furrsight.images.tables import Image, Source
from furrsight.settings import Settings
from furrsight.store import FileStore


@dataclass(frozen=True)
class Decoded:
    format: str
    mime: str
    width: int
    height: int
    thumb: bytes


class Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def decode(data: bytes, thumb_size: int) -> Decoded:
    """Decode enough to know the image and make its thumbnail (runs in a worker thread)."""
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            fmt = img.format or "UNKNOWN"
            width, height = img.size
            if fmt == "JPEG":
                img.draft("RGB", (thumb_size, thumb_size))  # decode at 1/2..1/8 scale: much faster
            view = ImageOps.exif_transpose(img)
            view.thumbnail((thumb_size, thumb_size))
            if view.mode not in ("RGB", "RGBA"):
                view = view.convert("RGBA" if "A" in view.getbands() or view.mode == "P" else "RGB")
            out = io.BytesIO()
            view.save(out, "WEBP", quality=80)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise Refused("not_an_image", f"not a readable image: {exc}") from exc
    return Decoded(fmt, PILImage.MIME.get(fmt, "application/octet-stream"), width, height, out.getvalue())


async def _add_source(image_id: int, source: Provenance) -> None:
    values = {f: getattr(source, f) for f in Provenance.__struct_fields__ if f not in ("job_id",)}
    same = Source.exists().where(
        (Source.image == image_id)
        & (Source.kind == source.kind)
        & (Source.job == source.job_id)
        & (Source.file_name == source.file_name)
        & (Source.url == source.url)
    )
    if source.job_id is not None and await same:
        return  # a redelivered job seeing the same file again: one sighting, one row
    await Source(image=image_id, job=source.job_id, **values).save()


async def ingest(store: FileStore, settings: Settings, data: bytes, source: Provenance) -> IngestResult:
    if not data:
        return IngestResult(outcome="refused", reason="empty", message="the file is empty")
    if len(data) > settings.ingest.max_file_bytes:
        return IngestResult(
            outcome="refused",
            reason="too_large",
            message=f"{len(data)} bytes is over the limit of {settings.ingest.max_file_bytes}",
        )
    sha256 = hashlib.sha256(data).hexdigest()
    existing = await Image.select(Image.id).where(Image.sha256 == sha256).first()
    if existing:
        await _add_source(existing["id"], source)
        return IngestResult(outcome="duplicate", image_id=existing["id"])
    try:
        decoded = await asyncio.to_thread(decode, data, settings.ingest.thumb_size)
    except Refused as refused:
        return IngestResult(outcome="refused", reason=refused.reason, message=refused.message)
    await store.put(data, sha256)
    await store.put_thumb(sha256, decoded.thumb)
    async with DATABASE.write_transaction():
        again = await Image.select(Image.id).where(Image.sha256 == sha256).first()
        if again:  # another worker stored the same bytes meanwhile
            await _add_source(again["id"], source)
            return IngestResult(outcome="duplicate", image_id=again["id"])
        row = Image(
            sha256=sha256,
            format=decoded.format,
            mime=decoded.mime,
            width=decoded.width,
            height=decoded.height,
            bytes=len(data),
            state="stored",
        )
        await row.save()
        await _add_source(row.id, source)
    return IngestResult(outcome="new", image_id=row.id)
