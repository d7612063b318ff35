"""The image files an export writes: the stored original where it can be (a JPEG, small enough,
upright as stored), with location metadata taken out without touching the pixels; otherwise
decoded, turned upright, resized to ``max_side`` and encoded as JPEG with no metadata at all.
A JPEG that its EXIF orientation turns is re-encoded upright because the readers disagree:
``datasets`` applies the orientation, WebDataset's PIL decoder does not.

A JPEG keeps its EXIF minus the GPS directory (orientation, camera and colour facts stay, so the
picture looks as stored), drops XMP and IPTC/Photoshop blocks (both can carry a place) and
comments; everything else — the compressed picture itself — is copied byte for byte.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from furrsight.images.analysis import gray, perceptual_hash

GPS_IFD = 0x8825
ORIENTATION = 0x0112
_DROP_APP = {0xED, 0xFE}  # APP13 (Photoshop / IPTC), COM


class Unsupported(ValueError):
    """A JPEG whose header this module does not take apart (it is re-encoded instead)."""


def _segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The header segments (marker, whole segment bytes) up to the start of scan, and the rest."""
    if data[:2] != b"\xff\xd8":
        raise Unsupported("not a JPEG")
    pos, out = 2, list[tuple[int, bytes]]()
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise Unsupported("bad marker")
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: the compressed picture follows, copied as it is
            return out, data[pos:]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append((marker, data[pos : pos + 2 + length]))
        pos += 2 + length
    raise Unsupported("no start of scan")


def _exif_without_gps(segment: bytes) -> bytes | None:
    exif = Image.Exif()
    exif.load(segment[4:])
    if exif.get(ORIENTATION, 1) != 1:
        raise Unsupported("turned by its EXIF orientation")  # re-encoded upright: every reader sees one picture
    if GPS_IFD not in exif:
        return segment
    del exif[GPS_IFD]
    body = exif.tobytes()
    if len(body) + 2 > 0xFFFF:
        return None
    return b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG without location metadata; the compressed picture is untouched. A file with
    nothing to take out (no EXIF GPS, XMP, IPTC or comment: most scraped files) is returned as
    it is, without a copy — walking its few header segments is all it costs."""
    segments, rest = _segments(data)
    kept = [b"\xff\xd8"]
    for marker, segment in segments:
        if marker in _DROP_APP:
            continue
        if marker == 0xE1:
            payload = segment[4:]
            if payload.startswith(b"Exif\x00\x00"):
                try:
                    cleaned = _exif_without_gps(segment)
                except Unsupported:
                    raise
                except Exception as exc:  # unreadable EXIF: do not guess what it hides
                    raise Unsupported(f"unreadable EXIF: {exc}") from exc
                if cleaned is None:
                    raise Unsupported("EXIF too large to rewrite")
                kept.append(cleaned)
            continue  # XMP or another APP1 kind: dropped
        kept.append(segment)
    if len(kept) == len(segments) + 1 and all(k is s for k, (_, s) in zip(kept[1:], segments, strict=True)):
        return data  # nothing taken out: the segments and the rest are the file itself
    return b"".join(kept) + rest


def reencode(data: bytes, max_side: int, quality: int) -> bytes:
    """Decoded upright, at most ``max_side`` on its longer side, as a JPEG without metadata."""
    with Image.open(io.BytesIO(data)) as img:
        if max_side and img.format == "JPEG":
            img.draft("RGB", (max_side, max_side))  # decode at a reduced scale where it can
        upright = ImageOps.exif_transpose(img)
        if upright.mode in ("RGBA", "LA", "P"):
            rgba = upright.convert("RGBA")
            upright = Image.new("RGB", rgba.size, (255, 255, 255))
            upright.paste(rgba, mask=rgba.getchannel("A"))
        upright = upright.convert("RGB")
        if max_side and max(upright.size) > max_side:
            upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        upright.save(out, "JPEG", quality=quality, optimize=False)
        return out.getvalue()


def export_bytes(data: bytes, fmt: str, width: int, height: int, max_side: int, quality: int) -> tuple[bytes, bool]:
    """What an export writes for one stored original (always a JPEG), and whether its pixels
    changed (re-encoded) — if not, the perceptual hash ingest measured on them still holds."""
    if fmt.upper() == "JPEG" and (not max_side or max(width, height) <= max_side):
        try:
            return strip_jpeg(data), False
        except Unsupported:
            pass
    return reencode(data, max_side, quality), True


def phash(data: bytes) -> str:
    """The perceptual hash of an exported image, as ingest computes it (for the leak check)."""
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (256, 256))
        upright = ImageOps.exif_transpose(img).convert("RGB")
        upright.thumbnail((512, 512))

        return perceptual_hash(gray(np.asarray(upright)))
