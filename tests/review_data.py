"""Pairs for the review tests, in a data directory of their own: real images through ingest, real
pairs through the pairs service, and model labels written as the analysis would leave them."""

from __future__ import annotations

from furrsight.images.ingest import ingest
from furrsight.images.schemas import Provenance
from furrsight.pairs import service as pairs
from furrsight.pairs.tables import Pair, PairService
from furrsight.settings import Settings
from furrsight.store import FileStore
from furrsight.taxonomy import service as taxonomy
from tests.images import photo


async def image(settings: Settings, seed: int, **source: object) -> int:
    data = photo(seed, size=(480, 360))
    result = await ingest(FileStore(settings.data_path), settings, data, Provenance(kind="scrape", **source))  # type: ignore[arg-type]
    assert result.image_id is not None, result
    return result.image_id


async def seed_pairs(settings: Settings, count: int, first_seed: int, plugin: str = "test_review") -> list[int]:
    """``count`` analysed pairs, least confident first by id: confidence 0.10, 0.11, …; each with a
    VLM breed (Poodle) and the VLM's service "Bath and blow-dry"."""
    poodle = (await taxonomy.resolve("breeds", "poodle")).id
    bath = (await taxonomy.resolve("services", "bath")).id
    assert poodle and bath
    ids = []
    for i in range(count):
        before = await image(settings, first_seed + 2 * i, plugin=plugin, license="CC-BY-4.0", author="Ann")
        after = await image(settings, first_seed + 2 * i + 1, plugin=plugin, license="CC-BY-4.0", author="Ann")
        pair = await pairs.create_pair(before, after, "post", None, "mining")
        await Pair.update(
            {
                Pair.status: "analysed",
                Pair.confidence: round(0.10 + i / 100, 2),
                Pair.breed_id: poodle,
                Pair.breed_source: "vlm",
                Pair.breed_confidence: 0.8,
                Pair.order_source: "vlm",
                Pair.order_confidence: 0.9,
                Pair.model: "test-vlm",
                Pair.prompt_version: "v1",
            }
        ).where(Pair.id == pair.id)
        await PairService.insert(PairService(pair=pair.id, service_id=bath, source="vlm", confidence=0.7))
        ids.append(pair.id)
    return ids
