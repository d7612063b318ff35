"""One batch of an export, and the leak check over what was written.

A batch is read, prepared and written in one thread (reading and writing in two threads made
them wait on each other's GIL hand-offs on a busy machine); what the leak check needs of each
image — its split, its hash, and whether that hash was measured now — is kept as it goes."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from furrsight.exports import pictures, splits
from furrsight.exports.rows import Row, Writer, key_of
from furrsight.settings import ExportSettings
from furrsight.store import FileStore


class Prepared(NamedTuple):
    data: bytes  # the exported file
    phash: str  # its perceptual hash, measured on the exported pixels
    measured: bool  # the hash was measured now (pixels re-encoded, or no stored hash)


def prepare(store: FileStore, conf: ExportSettings, image: dict[str, Any]) -> Prepared:
    """The exported file of one image and its perceptual hash (the stored one where the pixels
    are the stored ones, byte for byte: the compressed picture is copied as it is)."""
    data = store.file_path(image["sha256"]).read_bytes()
    out, changed = pictures.export_bytes(
        data, image["format"], image["width"], image["height"], conf.max_side, conf.jpeg_quality
    )
    if not changed and image.get("phash"):
        return Prepared(out, image["phash"], False)
    return Prepared(out, pictures.phash(out), True)


def write_batch(
    store: FileStore, conf: ExportSettings, writer: Writer, split: str, index: dict[str, int],
    items: list[dict[str, Any]], budget: float,
) -> list[tuple[tuple[str, bool], tuple[str, bool]]]:  # fmt: skip
    """Read, prepare and write pairs from the start of ``items`` for about ``budget`` seconds (at
    least one pair); each written pair's images' hashes and whether they were measured now.

    A time budget rather than a count: every hop between the event loop and this thread waits
    for both threads to be scheduled again — measured at 12 ms a hop on the 2-core development
    machine at a load of 8 (160 hops of 25 ms of work took 6.0 s), so 128-pair batches spent about
    a second of a 4–7 s 10k-pair export hopping. A re-encoding export is many times slower per
    pair, and a count large enough for the fast case would leave it deaf to cancellation."""
    out: list[tuple[tuple[str, bool], tuple[str, bool]]] = []
    until = time.monotonic() + budget
    for item in items:
        if out and time.monotonic() >= until:
            break
        before, after = prepare(store, conf, item["before"]), prepare(store, conf, item["after"])
        label = index.get(item["labels"]["breed"] or "")
        writer.add(Row(key_of(item["pair_id"]), split, item, label, before.data, after.data))
        out.append(((before.phash, before.measured), (after.phash, after.measured)))
    return out


def exported_leaks(
    version: dict[str, Any], conf: ExportSettings, image_splits: dict[int, set[str]], hashes: dict[int, str],
    measured: set[int],
) -> dict[str, int]:  # fmt: skip
    """The perceptual-hash leak check on the exported files. Two images whose hashes are both the
    version's (pixels byte for byte as stored) were compared when the version was made, at the
    same threshold and in the same splits (an export holds a subset of the version's pairs):
    when that found none, only pairs with an image measured now are compared again —
    ``len(measured) × images`` instead of ``images²``."""
    reuse = (
        version.get("settings", {}).get("leak_hamming") == conf.leak_hamming
        and version.get("report", {}).get("leaks", {}).get("phash_cross_split") == 0
    )
    only = measured if reuse else None
    leaks = splits.leak_check(image_splits, hashes, {}, conf.leak_hamming, conf.leak_cosine, only=only)
    leaks = {k: v for k, v in leaks.items() if not k.startswith("embedding") and k != "images_with_embedding"}
    return {**leaks, "images_measured": len(measured) if reuse else len(hashes)}


class Seen:
    """What the leak check needs of the exported images: their splits and hashes."""

    def __init__(self) -> None:
        self.splits: dict[int, set[str]] = {}
        self.hashes: dict[int, str] = {}
        self.measured: set[int] = set()  # hashed again from the exported file

    def add(self, item: dict[str, Any], split: str, facts: tuple[tuple[str, bool], tuple[str, bool]]) -> None:
        for side, (digest, now) in zip(("before", "after"), facts, strict=True):
            image_id = item[side]["id"]
            self.splits.setdefault(image_id, set()).add(split)
            self.hashes[image_id] = digest
            if now:
                self.measured.add(image_id)
