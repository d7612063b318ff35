"""Mining candidate pairs from what ingest and search already know.

* ``collage``: the two panels of a split collage, in the order collage detection read;
* ``post``: photos found together (one post, gallery or page) that show the same dog by
  embedding but are not the same photo;
* ``similar`` (off by default): the same author or site, same dog by embedding, not the same photo.

Never a pair of near-duplicates, of an image with itself, twice, or with an image that is not a dog.
The work is bounded by group keys and the vector index — never all pairs of images: a post's
photos are compared among themselves, a new image with its nearest neighbours. Marks remember the
highest image and source ids read, so a re-run reads only what came after them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import TypeVar

import numpy as np
from dramatiq import Broker

from furrsight.db.piccolo_conf import DATABASE
from furrsight.images import groups
from furrsight.jobs.runner import JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import submit
from furrsight.pairs.service import as_json
from furrsight.pairs.tables import MiningMark, Pair, PairHistory
from furrsight.search import facts as search_facts
from furrsight.settings import Settings

T = TypeVar("T")
MINE_KIND = "pairs.mine"
POST_ORDER_CONFIDENCE = 0.55  # posting order says little about which photo is the before
SIMILAR_ORDER_CONFIDENCE = 0.5


@dataclass
class Found:
    before: int
    after: int
    origin: str
    order_confidence: float
    score: float | None = None
    group_key: str | None = None


@dataclass
class Miner:
    settings: Settings
    ctx: JobContext
    facts: dict[int, groups.ImageFacts] = field(default_factory=dict)
    tags: dict[int, search_facts.BreedFact] = field(default_factory=dict)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    found: list[Found] = field(default_factory=list)

    async def load(self, ids: set[int]) -> None:
        ids -= self.facts.keys()
        if ids:
            ordered = sorted(ids)
            self.facts.update(await groups.facts(ordered))
            self.tags.update(await search_facts.breed_facts(ordered))
            self.vectors.update(await search_facts.embeddings(self.settings, ordered))

    def forget(self) -> None:
        self.facts.clear()
        self.tags.clear()
        self.vectors.clear()

    def skip(self, reason: str) -> None:
        self.ctx.count(f"skipped:{reason}")

    def not_a_dog(self, image_id: int) -> bool:
        tag = self.tags.get(image_id)  # no tag (a model that does not classify): not judged here
        return tag is not None and tag.dog_probability < self.settings.pairs.min_dog_probability

    def near_duplicates(self, a: int, b: int) -> bool:
        fa, fb = self.facts.get(a), self.facts.get(b)
        if fa is None or fb is None:
            return False
        if fa.near_dup_group is not None and fa.near_dup_group == fb.near_dup_group:
            return True
        distance = groups.hamming(fa.phash, fb.phash)
        return distance is not None and distance <= self.settings.ingest.near_dup_distance

    def cosine(self, a: int, b: int) -> float | None:
        va, vb = self.vectors.get(a), self.vectors.get(b)
        return None if va is None or vb is None else float(va @ vb)

    def refused(self, a: int, b: int) -> str | None:
        """Why (a, b) can never be a pair, or None."""
        if self.not_a_dog(a) or self.not_a_dog(b):
            return "not_a_dog"
        if self.near_duplicates(a, b):
            return "near_duplicate"
        score = self.cosine(a, b)
        if score is not None and score >= self.settings.pairs.same_photo_min:
            return "same_photo"
        return None

    # -- the three origins -------------------------------------------------------------------------
    def collage(self, panels: list[groups.Panel]) -> None:
        if len(panels) != 2:
            self.skip("collage_not_two_panels")
            return
        first, second = panels
        if first.panel == "after" or second.panel == "before":
            first, second = second, first
        reason = self.refused(first.id, second.id)
        if reason:
            self.skip(reason)
            return
        confidence = (
            min(p.confidence for p in panels if p.confidence is not None)
            if any(p.confidence is not None for p in panels)
            else 0.5
        )
        self.found.append(Found(first.id, second.id, "collage", confidence))

    def post(self, key: str, members: list[int]) -> None:
        """Photos of one post: a re-post of a photo counts once; same dog by embedding."""
        kept: list[int] = []
        for image_id in members:
            facts = self.facts.get(image_id)
            if facts is None or facts.has_panels or facts.parent_id is not None:
                continue  # a split collage: its panels are paired by the collage rule
            if self.not_a_dog(image_id):
                self.skip("not_a_dog")
                continue
            if any(
                self.near_duplicates(image_id, k)
                or (self.cosine(image_id, k) or 0) >= self.settings.pairs.same_photo_min
                for k in kept
            ):
                self.skip("near_duplicate")
                continue
            kept.append(image_id)
        for a, b in combinations(kept, 2):  # posting order: a was seen first
            score = self.cosine(a, b)
            if score is None:
                self.skip("not_embedded")
            elif score < self.settings.pairs.same_dog_min:
                self.skip("not_same_dog")
            else:
                self.found.append(Found(a, b, "post", POST_ORDER_CONFIDENCE, round(score, 4), key))

    async def similar(self, image_id: int) -> None:
        vector = self.vectors.get(image_id)
        facts = self.facts.get(image_id)
        if vector is None or facts is None or self.not_a_dog(image_id) or not (facts.authors or facts.sites):
            return
        s = self.settings.pairs
        hits = await search_facts.neighbours(self.settings, vector, s.similar_neighbours, exclude=image_id)
        close = [(i, score) for i, score in hits if s.similar_min <= score < s.same_photo_min]
        await self.load({i for i, _ in close})
        for other, score in close:
            of = self.facts.get(other)
            if of is None or not (set(of.authors) & set(facts.authors) or set(of.sites) & set(facts.sites)):
                continue
            reason = self.refused(image_id, other)
            if reason:
                self.skip(reason)
                continue
            first, second = sorted((image_id, other))
            self.found.append(Found(first, second, "similar", SIMILAR_ORDER_CONFIDENCE, round(score, 4)))


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[lo : lo + size] for lo in range(0, len(items), size)]


async def _marks() -> dict[str, int]:
    return {r["name"]: r["value"] for r in await MiningMark.select()}


async def _set_marks(values: dict[str, int]) -> None:
    async with DATABASE.write_transaction():
        for name, value in values.items():
            if await MiningMark.exists().where(MiningMark.name == name):
                await MiningMark.update({MiningMark.value: value}).where(MiningMark.name == name)
            else:
                await MiningMark.insert(MiningMark(name=name, value=value))


async def store(found: list[Found]) -> tuple[int, int]:
    """Insert what is not a pair yet (either way round): (new, already there)."""
    unique: dict[frozenset[int], Found] = {}
    for f in found:
        unique.setdefault(frozenset((f.before, f.after)), f)
    new = 0
    items = list(unique.items())
    for lo in range(0, len(items), 400):
        chunk = items[lo : lo + 400]
        ids = sorted({i for key, _ in chunk for i in key})
        async with DATABASE.write_transaction():
            existing = await Pair.select(Pair.before, Pair.after).where(Pair.before.is_in(ids) & Pair.after.is_in(ids))
            have = {frozenset((r["before"], r["after"])) for r in existing}
            rows = [
                Pair(
                    before=f.before,
                    after=f.after,
                    origin=f.origin,
                    group_key=f.group_key,
                    mining_score=f.score,
                    order_source="model",
                    order_confidence=f.order_confidence,
                    confidence=f.order_confidence,
                )
                for key, f in chunk
                if key not in have
            ]
            if rows:
                made = await Pair.insert(*rows).returning(Pair.id, Pair.origin)
                await PairHistory.insert(
                    *[
                        PairHistory(
                            pair=m["id"], field="created", new=as_json({"origin": m["origin"]}), via="mining", version=1
                        )
                        for m in made
                    ]
                )
                new += len(rows)
    return new, len(unique) - new


async def start_mine(broker: Broker, settings: Settings, creator: str | None, full: bool = False) -> JobOut:
    """The one way to start a mining job (the API, the page, the pipeline)."""
    return await submit(broker, settings.data_path, MINE_KIND, {"full": full}, creator)


async def run_mine(ctx: JobContext) -> None:
    """Mine candidate pairs from what is new since the last run (``full``: from everything)."""
    settings = ctx.settings
    marks = {} if ctx.params.get("full") else await _marks()
    top_image, top_source = await groups.max_ids()
    panels = await groups.collage_panels(marks.get("image", 0))
    posts = await groups.seen_together(marks.get("source", 0), settings.pairs.max_group)
    fresh = [i for i in range(marks.get("image", 0) + 1, top_image + 1)] if settings.pairs.mine_similar else []
    await ctx.set_total(len(panels) + len(posts) + len(fresh))
    ctx.log(f"mining {len(panels)} collages, {len(posts)} groups" + (f", {len(fresh)} new images" if fresh else ""))
    miner = Miner(settings, ctx)
    for chunk in _chunks(list(panels.values()), 500):  # facts and vectors are loaded chunk by chunk:
        await miner.load({p.id for ps in chunk for p in ps})  # memory stays bounded at any size
        for ps in chunk:
            miner.collage(ps)
        miner.forget()
        await ctx.advance(len(chunk))
    for batch in _chunks(list(posts.items()), 500):
        await miner.load({i for _, members in batch for i in members})
        for key, members in batch:
            miner.post(key, members)
        miner.forget()
        await ctx.advance(len(batch))
    for lo in range(0, len(fresh), 256):
        await miner.load(set(fresh[lo : lo + 256]))
        for image_id in fresh[lo : lo + 256]:
            await miner.similar(image_id)
        miner.forget()
        await ctx.advance(len(fresh[lo : lo + 256]))
    new, existing = await store(miner.found)
    ctx.count("new", new)
    if existing:
        ctx.count("existing", existing)
    for origin in ("collage", "post", "similar"):
        n = sum(1 for f in miner.found if f.origin == origin)
        if n:
            ctx.count(f"found:{origin}", n)
    await _set_marks(
        {"image": max(top_image, marks.get("image", 0)), "source": max(top_source, marks.get("source", 0))}
    )
    ctx.log(f"{new} new candidate pairs, {existing} already known")
