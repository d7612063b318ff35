"""Taking an image down, from the dataset's side: the images feature records it (and leaves it
out of nothing by itself); versions made from now on leave its pairs out, and this answers which
versions and exports on disk contain it, so they can be rebuilt without it."""

from __future__ import annotations

from furrsight.exports import service
from furrsight.exports.schemas import TakedownOut
from furrsight.images import service as images
from furrsight.store import FileStore


class TakedownError(ValueError):
    pass


async def take_down(image_id: int, reason: str, actor: str | None, address: str | None) -> TakedownOut:
    try:
        await images.takedown(image_id, reason, actor, address)
    except images.TakedownError as exc:
        raise TakedownError(str(exc)) from exc
    except LookupError as exc:
        raise service.NotFound(str(exc)) from exc
    return await state(image_id)


async def purge(store: FileStore, image_id: int, actor: str | None, address: str | None) -> TakedownOut:
    try:
        await images.purge(store, image_id, actor, address)
    except images.TakedownError as exc:
        raise TakedownError(str(exc)) from exc
    except LookupError as exc:
        raise service.NotFound(str(exc)) from exc
    return await state(image_id)


async def state(image_id: int) -> TakedownOut:
    row = await images.takedown_state(image_id)
    if row is None:
        raise service.NotFound(f"image {image_id} is not taken down")
    versions, exports = await service.containing(image_id)
    return TakedownOut(
        image_id=image_id, reason=row["reason"], versions=versions, exports=exports, purged=row["purged_at"] is not None
    )
