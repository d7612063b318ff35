"""The steps of ingest, in order; each may stop the run by raising ``Refused`` (code + sentence).

A step takes the ``Run`` (what is known so far) and adds to it. CPU-bound steps are plain
functions (the pipeline runs them in a worker thread); the ones that touch the store or the
database are async.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image as PILImage

from furrsight.images import collage
from furrsight.images.analysis import Analysis, analyse, gray
from furrsight.images.decode import Decoded, Header, Refused, decode, open_header
from furrsight.images.schemas import Provenance
from furrsight.images.sniff import describe_refused, sniff
from furrsight.settings import Settings
from furrsight.store import FileStore


@dataclass(frozen=True)
class PanelOf:
    """What makes an ingest a collage panel: its parent and where it was cut."""

    parent_id: int
    crop: list[int]
    panel: str
    confidence: float


@dataclass
class Run:
    data: bytes
    source: Provenance
    settings: Settings
    store: FileStore
    panel_of: PanelOf | None = None
    format: str = ""
    sha256: str = ""
    header: Header | None = None
    decoded: Decoded | None = None
    analysis: Analysis | None = None
    cut: collage.Cut | None = None
    failure: str | None = None  # an analysis step failed: the image is kept as `failed`
    wrote: list[Path] = field(default_factory=list)  # files this run created
    image_id: int | None = None
    state: str | None = None
    group: int | None = None
    children: list[int] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return "child." if self.panel_of else ""


def check_bytes(run: Run) -> None:
    if not run.data:
        raise Refused("empty", "the file is empty")
    limit = run.settings.ingest.max_file_bytes
    if len(run.data) > limit:
        raise Refused("too_large", f"{len(run.data)} bytes is over the limit of {limit} bytes")


def sniff_type(run: Run) -> None:
    fmt = sniff(run.data)
    if fmt is None:
        other = describe_refused(run.data)
        if other:
            raise Refused("unsupported_type", f"{other} files are not accepted (JPEG, PNG, WebP, GIF, AVIF, HEIC are)")
        raise Refused("not_an_image", "the content is not an image of an accepted type, whatever its name says")
    run.format = fmt


def hash_bytes(run: Run) -> None:
    run.sha256 = hashlib.sha256(run.data).hexdigest()


def read_header(run: Run) -> None:
    run.header = open_header(run.data, run.settings.ingest.max_pixels)
    low = run.settings.ingest.min_side
    if min(run.header.width, run.header.height) < low:
        size = f"{run.header.width}×{run.header.height}"
        raise Refused("too_small", f"{size} pixels: the shorter side is under the minimum of {low}")


def decode_once(run: Run) -> None:
    assert run.header is not None
    run.decoded = decode(run.header, run.settings.ingest.thumb_size)
    run.header.image.close()


def analyse_image(run: Run) -> None:
    """Hash, flags and (for a top-level image) collage detection, all on the working image."""
    assert run.decoded is not None and run.header is not None
    try:
        g = gray(run.decoded.work)
        run.analysis = analyse(run.decoded.work, g, run.header.width, run.header.height, run.settings.ingest)
        if run.panel_of is None and run.settings.ingest.split_collages:
            cut = collage.detect(g)
            if cut and cut.confidence >= run.settings.ingest.collage_min_confidence:
                run.cut = _fits(cut, run)
    except Exception as exc:  # an odd image the analysis cannot handle is kept, marked failed
        run.failure = f"analysis_error: {exc!r}"


def _fits(cut: collage.Cut, run: Run) -> collage.Cut | None:
    assert run.header is not None
    boxes = collage.boxes(cut, run.header.width, run.header.height)
    low = run.settings.ingest.min_side
    ok = all(min(b[2] - b[0], b[3] - b[1]) >= low for b in boxes)
    return cut if ok else None


def store_original(run: Run) -> None:
    """Atomic write (temp file, fsync, rename); runs in the worker thread with the decode."""
    if run.store.put_sync(run.data, run.sha256):
        run.wrote.append(run.store.file_path(run.sha256))


def store_thumb(run: Run) -> None:
    assert run.decoded is not None
    path = run.store.thumb_path(run.sha256)
    existed = path.exists()
    run.store.put_thumb_sync(run.sha256, run.decoded.thumb)
    if not existed:
        run.wrote.append(path)


def crop_panels(data: bytes, cut: collage.Cut, width: int, height: int) -> list[tuple[list[int], PILImage.Image]]:
    """The two panels of a collage, cut from the full-resolution upright image."""
    from furrsight.images.decode import decode_full

    full = decode_full(data)
    return [(box, full.crop((box[0], box[1], box[2], box[3]))) for box in collage.boxes(cut, width, height)]
