"""What later stages know about images, for the gallery's cards and the image page: the breed
tag (search) and the pairs an image is in (pairs). The app hands this to the images feature,
which cannot import later stages itself."""

from __future__ import annotations

import msgspec

from furrsight.pairs.batches import pairs_of_images
from furrsight.search.tagging import tags_of


class ImageLabel(msgspec.Struct, kw_only=True):
    breed: str | None = None  # the breed tag; None with ``tagged``: not a dog
    breed_confidence: float | None = None
    tagged: bool = False
    pairs: list[tuple[int, str]] = []  # (pair id, status)


async def image_labels(ids: list[int]) -> dict[int, ImageLabel]:
    tags, pairs = await tags_of(ids), await pairs_of_images(ids)
    return {
        i: ImageLabel(
            breed=tags[i][0] if i in tags else None,
            breed_confidence=tags[i][1] if i in tags else None,
            tagged=i in tags,
            pairs=pairs.get(i, []),
        )
        for i in ids
    }
