"""Near-duplicate groups: images whose perceptual hashes are within a Hamming distance.

A group is named by the smallest image id in it. Joining is transitive: an image matching
members of two groups merges them. Call inside a write transaction (read, then write).
"""

from __future__ import annotations

from furrsight.images.analysis import hamming
from furrsight.images.tables import Image


async def assign_group(image_id: int, phash: str, distance: int) -> int | None:
    """Put ``image_id`` into the group of its near-duplicates (merging groups); returns it."""
    rows = await Image.select(Image.id, Image.phash, Image.near_dup_group).where(
        Image.phash.is_not_null() & (Image.id != image_id)
    )
    matches = [r for r in rows if hamming(r["phash"], phash) <= distance]
    if not matches:
        return None  # a new row has no group; a re-processed one left its group first
    groups = sorted({r["near_dup_group"] for r in matches if r["near_dup_group"] is not None})
    ids = [image_id, *(r["id"] for r in matches)]
    target = min([*groups, *ids])
    await Image.update({Image.near_dup_group: target}).where(Image.id.is_in(ids))
    if groups:
        await Image.update({Image.near_dup_group: target}).where(Image.near_dup_group.is_in(groups))
    return target


async def leave_group(image_id: int) -> None:
    """Take an image out of its group (before re-hashing it); a group left with one member ends."""
    row = await Image.select(Image.near_dup_group).where(Image.id == image_id).first()
    group = row["near_dup_group"] if row else None
    if group is None:
        return
    await Image.update({Image.near_dup_group: None}).where(Image.id == image_id)
    members = await Image.select(Image.id).where(Image.near_dup_group == group)
    if len(members) == 1:
        await Image.update({Image.near_dup_group: None}).where(Image.id == members[0]["id"])
    elif members and all(m["id"] != group for m in members):
        new = min(m["id"] for m in members)
        await Image.update({Image.near_dup_group: new}).where(Image.near_dup_group == group)
