"""What a file is, from its first bytes: never from its name or a declared content type."""

from __future__ import annotations

ALLOWED = ("JPEG", "PNG", "WEBP", "GIF", "AVIF", "HEIF")

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
# Recognised, but not accepted: (prefix, name).
_REFUSED = (
    (b"BM", "BMP"),
    (b"II*\0", "TIFF"),
    (b"MM\0*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"\0\0\1\0", "ICO"),
    (b"8BPS", "PSD"),
)


def _ftyp_brands(data: bytes) -> set[bytes]:
    """The major and compatible brands of an ISO-BMFF ``ftyp`` box (AVIF, HEIC)."""
    size = int.from_bytes(data[0:4], "big")
    end = min(max(size, 16), len(data), 256)
    brands = {data[8:12]}
    brands.update(data[i : i + 4] for i in range(16, end - 3, 4))
    return brands


def sniff(data: bytes) -> str | None:
    """The allowed format of ``data`` (one of ``ALLOWED``), or None."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brands = _ftyp_brands(data)
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & _HEIF_BRANDS:
            return "HEIF"
    return None


def describe_refused(data: bytes) -> str | None:
    """A name for a recognised type that is not accepted (SVG, TIFF, …), or None."""
    for prefix, name in _REFUSED:
        if data.startswith(prefix):
            return name
    text = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in data[:4096].lower():
        return "SVG"
    return None
