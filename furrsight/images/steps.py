"""The steps of ingest, in order; each may stop the run by raising ``Refused`` (code + sentence).

The first two run in the caller's process and are cheap (the file's size and type); the middle
runs in a worker (a process of the pool, or a thread: ``work.prepare``): SHA-256, a look-up of it
(bytes already stored end the run as a sighting), then ``WORK_STEPS`` on a ``Run``; the last two
(record the row, split a collage) are back in the caller's process (see ``ingest.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image as PILImage

from furrsight.images import collage
from furrsight.images.analysis import Analysis, analyse, gray8
from furrsight.images.decode import Decoded, Header, Refused, decode, open_header
from furrsight.images.sniff import describe_refused, sniff
from furrsight.settings import IngestSettings
from furrsight.store import FileStore

STEP_NAMES = [
    "check_bytes", "sniff",  # in the caller
    "hash", "dedup", "header", "store_original", "decode", "analyse", "store_thumb",  # in a worker
    "record", "split",  # in the caller
]  # fmt: skip


def check_bytes(data: bytes, limits: IngestSettings) -> None:
    if not data:
        raise Refused("empty", "the file is empty")
    if len(data) > limits.max_file_bytes:
        raise Refused("too_large", f"{len(data)} bytes is over the limit of {limits.max_file_bytes} bytes")


def sniff_type(data: bytes) -> str:
    fmt = sniff(data)
    if fmt is None:
        other = describe_refused(data)
        if other:
            raise Refused("unsupported_type", f"{other} files are not accepted (JPEG, PNG, WebP, GIF, AVIF, HEIC are)")
        raise Refused("not_an_image", "the content is not an image of an accepted type, whatever its name says")
    return fmt


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Run:
    """What a worker knows about one file so far."""

    data: bytes
    sha256: str
    limits: IngestSettings
    store: FileStore
    is_panel: bool = False
    fresh: bool = True  # no row has these bytes (ingest); False when re-processing a stored image
    header: Header | None = None
    decoded: Decoded | None = None
    analysis: Analysis | None = None
    cut: collage.Cut | None = None
    failure: str | None = None  # an analysis step failed: the image is kept as `failed`
    wrote: list[Path] = field(default_factory=list)  # files this run created
    durable: list[Path] = field(default_factory=list)  # files to fsync before the row commits


def read_header(run: Run) -> None:
    run.header = open_header(run.data, run.limits.max_pixels)
    low = run.limits.min_side
    if min(run.header.width, run.header.height) < low:
        size = f"{run.header.width}×{run.header.height}"
        raise Refused("too_small", f"{size} pixels: the shorter side is under the minimum of {low}")


def decode_once(run: Run) -> None:
    assert run.header is not None
    run.decoded = decode(run.header, run.limits.thumb_size)
    run.header.image.close()


def analyse_image(run: Run) -> None:
    """Hash, flags and (for a top-level image) collage detection, all on the working image."""
    assert run.decoded is not None and run.header is not None
    try:
        g8 = gray8(run.decoded.array)  # every step takes the uint8 grey image; float32 only where needed
        run.analysis = analyse(None, run.header.width, run.header.height, run.limits, g8)
        if not run.is_panel and run.limits.split_collages:
            cut = collage.detect(None, run.decoded.array if run.limits.collage_captions else None, g8)
            if cut and cut.confidence >= run.limits.collage_min_confidence:
                run.cut = _fits(cut, run)
    except Exception as exc:  # an odd image the analysis cannot handle is kept, marked failed
        run.failure = f"analysis_error: {exc!r}"


def _fits(cut: collage.Cut, run: Run) -> collage.Cut | None:
    assert run.header is not None
    boxes = collage.boxes(cut, run.header.width, run.header.height)
    low = run.limits.min_side
    ok = all(min(b[2] - b[0], b[3] - b[1]) >= low for b in boxes)
    return cut if ok else None


def store_original(run: Run) -> None:
    """Written in place when new (no row can point at it before this run records one), else
    atomically (temp file, rename). Not fsynced here: the recorder makes a whole group of
    originals durable (off the workers' time) before it commits the rows that point at them."""
    if run.store.put_sync(run.data, run.sha256, fresh=run.fresh):
        run.wrote.append(run.store.file_path(run.sha256))
    run.durable.append(run.store.file_path(run.sha256))


def store_thumb(run: Run) -> None:
    """As the original (in place when new, else atomic); not fsynced: a thumbnail can be made
    again from the original (doctor does)."""
    assert run.decoded is not None
    if run.store.put_thumb_sync(run.sha256, run.decoded.thumb, fresh=run.fresh):
        run.wrote.append(run.store.thumb_path(run.sha256))


# The original is written right after its header passed, while its bytes are still in the CPU's
# cache from the hash: after the decode it cost 0.2-0.3 ms more a photo of 500 KiB, the copy
# into the page cache reading them back from memory. A file refused later (a corrupt or
# truncated image) is removed again by ``work.prepare``.
WORK_STEPS = [
    ("header", read_header),
    ("store_original", store_original),
    ("decode", decode_once),
    ("analyse", analyse_image),
    ("store_thumb", store_thumb),
]


def crop_panels(data: bytes, cut: collage.Cut, width: int, height: int) -> list[tuple[list[int], PILImage.Image]]:
    """The two panels of a collage, cut from the full-resolution upright image."""
    from furrsight.images.decode import decode_full

    full = decode_full(data)
    return [(box, full.crop((box[0], box[1], box[2], box[3]))) for box in collage.boxes(cut, width, height)]
