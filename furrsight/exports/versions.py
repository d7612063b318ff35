"""Making a dataset version: select accepted pairs, leave out what the licences or takedowns
forbid (saying why), freeze every label and both images' provenance, split by component, check
for leaks, hash it all, and write it in one transaction."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from typing import Any

import msgspec

from furrsight.db.piccolo_conf import DATABASE
from furrsight.exports import licences, lineage, splits, stratify
from furrsight.exports.attribution import sentence
from furrsight.exports.tables import DatasetVersion, VersionItem
from furrsight.images import groups
from furrsight.jobs.runner import JobContext
from furrsight.pairs import service as pairs
from furrsight.search import facts as search_facts
from furrsight.settings import ExportSettings, Settings
from furrsight.store import FileStore
from furrsight.taxonomy import service as taxonomy

PAGE = 500


def content_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON (keys sorted) of what a version is."""
    return hashlib.sha256(msgspec.json.encode(record, order="sorted")).hexdigest()


async def accepted_pairs(request: dict[str, Any]) -> list[pairs.PairOut]:
    where = pairs.PairFilter(
        status="accepted",
        origin=request.get("origin"),
        breed=request.get("breed"),
        service=request.get("service"),
        min_confidence=request.get("min_confidence"),
    )
    out: list[pairs.PairOut] = []
    cursor = None
    while True:
        page = await pairs.list_pairs(where, PAGE, cursor)
        out.extend(page.items)
        if page.next_cursor is None:
            return sorted(out, key=lambda p: p.id)
        cursor = page.next_cursor


def image_record(p: groups.ImageProvenance) -> dict[str, Any]:
    lic = licences.parse(p.license)
    return {
        "id": p.id,
        "sha256": p.sha256,
        "format": p.format,
        "width": p.width,
        "height": p.height,
        "phash": p.phash,
        "title": p.title,
        "author": p.author,
        "license": lic.id,
        "license_name": lic.name,
        "license_url": lic.url,
        "source_url": p.source_url,
        "page_url": p.page_url,
        "attribution": sentence(p.title, p.author, p.page_url or p.source_url, lic),
    }


def labels(pair: pairs.PairOut) -> dict[str, Any]:
    return {
        "breed_id": pair.breed_id,
        "breed": pair.breed,
        "breed_source": pair.breed_source,
        "breed_confidence": pair.breed_confidence,
        "services": [s.name for s in pair.services],
        "service_labels": [{"name": s.name, "source": s.source, "confidence": s.confidence} for s in pair.services],
        "origin": pair.origin,
        "same_dog_confidence": pair.same_dog_confidence,
        "order_source": pair.order_source,
        "order_confidence": pair.order_confidence,
        "caption": pair.caption,
        "model": pair.model,
        "prompt_version": pair.prompt_version,
        "reviewed_by": pair.reviewed_by,
    }


def _why_not(
    pair: pairs.PairOut, seen: dict[int, groups.ImageProvenance], down: dict[int, str],
    families: list[str], allow_unknown: bool, store: FileStore,
) -> str | None:  # fmt: skip
    for image_id in (pair.before_id, pair.after_id):
        if image_id in down:
            return "taken_down"
        prov = seen.get(image_id)
        if prov is None or not store.exists(prov.sha256):
            return "missing_file"
        lic = licences.parse(prov.license)
        if not licences.allowed(lic, families, allow_unknown):
            return f"license:{lic.id}"
    return None


def _members(chosen: list[pairs.PairOut], seen: dict[int, groups.ImageProvenance]) -> list[splits.Member]:
    members = []
    for p in chosen:
        keys = {f"post:{p.group_key}"} if p.group_key else set()
        for image_id in (p.before_id, p.after_id):
            prov = seen[image_id]
            keys |= {f"post:{k}" for k in prov.group_keys}
            if prov.parent_id is not None:
                keys.add(f"collage:{prov.parent_id}")
            if prov.near_dup_group is not None:
                keys.add(f"dup:{prov.near_dup_group}")
        members.append(splits.Member(pair_id=p.id, images=(p.before_id, p.after_id), keys=sorted(keys), breed=p.breed))
    return members


async def class_names(chosen: list[pairs.PairOut]) -> list[str]:
    """The breed class label names: the taxonomy's breeds (then any retired one a label uses)."""
    names = [b.name for b in await taxonomy.list_entries("breeds")]
    extra = sorted({p.breed for p in chosen if p.breed and p.breed not in names})
    return names + extra


class Split(msgspec.Struct, kw_only=True):
    assigned: dict[int, tuple[str, str]]  # pair id -> (split, component key)
    members: list[splits.Member]
    leaks: dict[str, int]


def split_pairs(
    chosen: list[pairs.PairOut], seen: dict[int, groups.ImageProvenance], vectors: dict[int, Any],
    conf: ExportSettings, seed: str, ratios: tuple[float, float, float], anchors: dict[int, str],
) -> Split:  # fmt: skip
    """Components (shared images, near-duplicates by hash or embedding, posts, collages), their
    splits (anchored, stratified by breed), and the leak check measured over the result (CPU
    work: a thread)."""
    images = sorted({i for p in chosen for i in (p.before_id, p.after_id)})
    hashes: dict[int, str] = {i: h for i in images if (h := seen[i].phash)}
    hash_ids = sorted(hashes)
    near = splits.phash_neighbours(hash_ids, [hashes[i] for i in hash_ids], conf.leak_hamming)
    dup_groups: list[list[int]] = [list(g) for g in near] + splits.embedding_neighbours(vectors, conf.leak_cosine)
    members = _members(chosen, seen)
    keys = splits.components(members, dup_groups)
    placed = stratify.stratify(keys, {m.pair_id: m.breed for m in members}, anchors, seed, ratios)
    assigned = {pid: (placed[pid], key) for pid, key in keys.items()}
    image_splits: dict[int, set[str]] = {}
    for p in chosen:
        for i in (p.before_id, p.after_id):
            image_splits.setdefault(i, set()).add(assigned[p.id][0])
    leaks = splits.leak_check(image_splits, hashes, vectors, conf.leak_hamming, conf.leak_cosine)
    return Split(assigned=assigned, members=members, leaks=leaks)


def _item(p: pairs.PairOut, seen: dict[int, groups.ImageProvenance], split: tuple[str, str]) -> dict[str, Any]:
    return {
        "pair_id": p.id,
        "split": split[0],
        "component": split[1],
        "before_id": p.before_id,
        "after_id": p.after_id,
        "labels": labels(p),
        "before": image_record(seen[p.before_id]),
        "after": image_record(seen[p.after_id]),
    }


def _counts(items: list[dict[str, Any]], result: Split, left_out: dict[str, int]) -> dict[str, Any]:
    return {
        "pairs": len(items),
        "images": len({i[side]["id"] for i in items for side in ("before", "after")}),
        "components": len({c for _, c in result.assigned.values()}),
        **{s: sum(1 for i in items if i["split"] == s) for s in splits.SPLITS},
        "left_out": left_out,
    }


def _report(
    items: list[dict[str, Any]], result: Split, anchors: dict[int, str], ratios: tuple[float, float, float]
) -> dict[str, Any]:
    licence_counts = Counter(i[side]["license"] for i in items for side in ("before", "after"))
    names = {pid: s for pid, (s, _) in result.assigned.items()}
    held = [pid for pid in names if pid in anchors]
    return {
        "breeds": splits.breed_distribution(result.members, names),
        "stratification": stratify.deviation({m.pair_id: m.breed for m in result.members}, names, ratios),
        "anchors": {
            "kept": sum(1 for pid in held if names[pid] == anchors[pid]),
            "moved_by_merge": sum(1 for pid in held if names[pid] != anchors[pid]),
            "new": len(names) - len(held),
        },
        "leaks": result.leaks,
        "licenses": dict(sorted(licence_counts.items())),
    }


async def build(ctx: JobContext, request: dict[str, Any], creator: str | None) -> int:
    """The version job's work; returns the new version's id (or the one this job made already)."""
    settings: Settings = ctx.settings
    done = await DatasetVersion.select(DatasetVersion.id).where(DatasetVersion.job_id == ctx.job_id).first()
    if done:  # a redelivered message after the version was written
        return int(done["id"])
    conf = settings.exports
    families = request.get("licenses") or conf.licenses
    allow_unknown = bool(request.get("allow_unknown_license"))
    ratios: tuple[float, float, float] = tuple(float(r) for r in request.get("ratios") or conf.split_ratios)  # type: ignore[assignment]
    seed = request.get("seed") or conf.split_seed
    base = int(request["base"]) if "base" in request else await lineage.newest_version()
    candidates = await accepted_pairs(request)
    await ctx.set_total(len(candidates))
    ids = sorted({i for p in candidates for i in (p.before_id, p.after_id)})
    seen, down = await groups.provenance(ids), await groups.taken_down(ids)
    store = FileStore(settings.data_path)
    chosen: list[pairs.PairOut] = []
    excluded: list[dict[str, Any]] = []
    for p in candidates:
        if why := _why_not(p, seen, down, families, allow_unknown, store):
            excluded.append({"pair_id": p.id, "reason": why})
        else:
            chosen.append(p)
    images = sorted({i for p in chosen for i in (p.before_id, p.after_id)})
    ctx.log(f"{len(chosen)} pairs of {len(candidates)} selected, {len(images)} images")
    vectors = await search_facts.embeddings(settings, images)
    held = await lineage.anchors(base, seed, ratios)
    result = await asyncio.to_thread(split_pairs, chosen, seen, vectors, conf, seed, ratios, held)
    items = [_item(p, seen, result.assigned[p.id]) for p in chosen]
    names = await class_names(chosen)
    selection = {**request, "licenses": families, "allow_unknown_license": allow_unknown, "ratios": list(ratios)}
    selection["seed"], selection["base"] = seed, base
    used = {
        "leak_cosine": conf.leak_cosine,
        "leak_hamming": conf.leak_hamming,
        "embedding_model": settings.search.model,
    }
    left_out = dict(sorted(Counter(e["reason"] for e in excluded).items()))
    counts = _counts(items, result, left_out)
    digest = content_hash(
        {"items": items, "class_names": names, "selection": selection, "settings": used, "excluded": excluded}
    )
    version_id = await _save(
        DatasetVersion(
            name=request["name"], notes=request.get("notes", ""), created_by=creator, job_id=ctx.job_id,
            selection=selection, settings=used, class_names=names, counts=counts,
            report=_report(items, result, held, ratios), excluded=excluded, content_hash=digest,
        ),
        items,
    )  # fmt: skip
    ctx.done = len(candidates)
    ctx.count("pairs", len(items))
    for reason, n in left_out.items():
        ctx.count(f"left_out:{reason}", n)
    ctx.log(f"version {version_id} {request['name']}: {counts}; leaks {result.leaks}")
    return version_id


async def _save(version: DatasetVersion, items: list[dict[str, Any]]) -> int:
    """The version and its items, in one transaction: a version is all there or not at all."""
    async with DATABASE.write_transaction():
        row = (await DatasetVersion.insert(version).returning(DatasetVersion.id))[0]
        for lo in range(0, len(items), PAGE):
            rows = [VersionItem(version=row["id"], **item) for item in items[lo : lo + PAGE]]  # type: ignore[arg-type]
            await VersionItem.insert(*rows)
    return int(row["id"])
