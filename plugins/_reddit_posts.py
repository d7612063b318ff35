"""What images a Reddit post holds, read from the post as Reddit's API answers it.

A gallery's images are in ``media_metadata`` in the order of ``gallery_data``; a direct image
post links the file; a text post may carry inline images in ``media_metadata``; a link post has
a ``preview`` image. A crosspost carries none of these itself: its images are in
``crosspost_parent_list``, so a post without images of its own is read through its parent, and its
images keep the parent's group. URLs are HTML-unescaped (answers without ``raw_json=1`` carry
``&amp;``). A post without images says why.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp", ".gif")
VIDEO_HINTS = ("hosted:video", "rich:video")
REASONS = {  # why a post gave no image, as counted (no_images:<reason>) and logged
    "gallery_unavailable": "galleries without a usable item",
    "link": "links without a preview image",
    "text": "text posts",
    "video": "videos",
}


@dataclass(frozen=True)
class Found:
    url: str
    caption: str | None = None


@dataclass
class PostMedia:
    name: str  # the post that holds the images (a crosspost's parent)
    permalink: str
    title: str | None
    author: str | None
    images: list[Found] = field(default_factory=list)
    reason: str | None = None  # set when images is empty


def _url(value: Any) -> str | None:
    return html.unescape(str(value)) if value else None


def _gallery(post: dict[str, Any]) -> list[Found]:
    media = post.get("media_metadata") or {}
    found = []
    for item in (post.get("gallery_data") or {}).get("items") or []:
        meta = media.get(item.get("media_id")) or {}
        source = meta.get("s") or {}
        url = _url(source.get("u") or source.get("gif"))  # AnimatedImage items have gif/mp4, no u
        if url and meta.get("status", "valid") == "valid":
            found.append(Found(url, (item.get("caption") or "").strip() or None))
    return found


def _inline(post: dict[str, Any]) -> list[Found]:
    found = []
    for meta in (post.get("media_metadata") or {}).values():
        url = _url((meta.get("s") or {}).get("u"))
        if url and meta.get("e") == "Image" and meta.get("status", "valid") == "valid":
            found.append(Found(url))
    return found


def _preview(post: dict[str, Any]) -> list[Found]:
    images = (post.get("preview") or {}).get("images") or []
    url = _url(((images[0] if images else {}).get("source") or {}).get("url"))
    return [Found(url)] if url else []


def own_media(post: dict[str, Any]) -> tuple[list[Found], str | None]:
    """The post's own images, or none and why."""
    if post.get("is_gallery") or post.get("gallery_data"):
        found = _gallery(post)
        return (found, None) if found else ([], "gallery_unavailable")
    link = str(post.get("url_overridden_by_dest") or post.get("url") or "")
    if post.get("post_hint") == "image" or urlsplit(html.unescape(link)).path.lower().endswith(IMAGE_EXT):
        return [Found(html.unescape(link))], None
    if post.get("is_video") or post.get("post_hint") in VIDEO_HINTS:
        return [], "video"
    if post.get("is_self"):
        found = _inline(post)
        return (found, None) if found else ([], "text")
    found = _preview(post)
    return (found, None) if found else ([], "link")


def post_media(post: dict[str, Any]) -> PostMedia:
    """The images of a post, read through its crossposted parent when it has none of its own."""
    found, reason = own_media(post)
    source = post
    parents = post.get("crosspost_parent_list") or []
    if not found and parents:
        parent_found, parent_reason = own_media(parents[0])
        source, found, reason = parents[0], parent_found, parent_reason
    return PostMedia(
        name=str(source.get("name") or f"t3_{source.get('id')}"), permalink=str(source.get("permalink") or ""),
        title=source.get("title"), author=source.get("author"), images=found, reason=None if found else reason,
    )  # fmt: skip
