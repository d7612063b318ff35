"""Dataset versions and exports: start the jobs, run them, read versions, diffs and exports.

One start function per job kind (``start_version``, ``start_export``): routes, the CLI and
takedown rebuilds call them. Versions are never changed after their job wrote them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from dramatiq import Broker

from furrsight.exports import exporter, lineage, versions
from furrsight.exports.schemas import (
    FORMATS,
    DiffOut,
    ExportOut,
    ItemOut,
    ItemPage,
    Relabel,
    VersionOut,
    VersionPage,
    VersionRequest,
)
from furrsight.exports.tables import DatasetExport, DatasetVersion, VersionItem
from furrsight.jobs.runner import JobCancelled, JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import submit
from furrsight.settings import Settings
from furrsight.taxonomy import service as taxonomy

VERSION_KIND = "exports.version"
EXPORT_KIND = "exports.export"


class ExportError(ValueError):
    """Bad input, in words (400)."""


class NotFound(LookupError):
    pass


class Conflict(ExportError):
    """409: the name is taken."""


# -- starting jobs -----------------------------------------------------------------------------
async def start_version(broker: Broker, settings: Settings, creator: str | None, request: VersionRequest) -> JobOut:
    """Check the request, then queue the version job (202 with its Location)."""
    if await DatasetVersion.exists().where(DatasetVersion.name == request.name):
        raise Conflict(f"a dataset version named {request.name!r} exists already")
    ratios = request.ratios or settings.exports.split_ratios
    if len(ratios) != 3 or sum(ratios) <= 0 or ratios[0] <= 0:
        raise ExportError("ratios: three shares (train, validation, test) with a train share above 0")
    for kind, text in (("breeds", request.breed), ("services", request.service)):
        if text and not text.isdigit() and (await taxonomy.resolve(kind, text)).id is None:  # type: ignore[arg-type]
            raise ExportError(f"no {kind[:-1]} matches {text!r}")
    params = msgspec.to_builtins(request)
    params = {k: v for k, v in params.items() if v is not None}
    params["base"] = await _base(request, settings)
    return await submit(broker, settings.data_path, VERSION_KIND, {"request": params, "creator": creator}, creator)


async def _base(request: VersionRequest, settings: Settings) -> int:
    """The version to anchor on, fixed when the job is queued (a redelivery keeps it)."""
    if request.base is None:
        return await lineage.newest_version()
    if request.base:
        row = await DatasetVersion.select(DatasetVersion.selection).where(DatasetVersion.id == request.base).first()
        if row is None:
            raise ExportError(f"base: there is no version {request.base}")
        seed = request.seed or settings.exports.split_seed
        ratios = tuple(float(r) for r in request.ratios or settings.exports.split_ratios)
        if not lineage.same_split_rules(msgspec.json.decode(row["selection"]), seed, ratios):  # type: ignore[arg-type]
            raise ExportError(f"base: version {request.base} was split with another seed or other ratios")
    return request.base


async def run_version(ctx: JobContext) -> None:
    version_id = await versions.build(ctx, ctx.params["request"], ctx.params.get("creator"))
    ctx.count("version_id", version_id)  # the job's counters say which version it made


async def start_export(broker: Broker, settings: Settings, creator: str | None, version_id: int, fmt: str) -> JobOut:
    if fmt not in FORMATS:
        raise ExportError(f"format: one of {', '.join(FORMATS)}")
    await get_version(version_id)
    row = (await DatasetExport.insert(DatasetExport(version=version_id, format=fmt)).returning(DatasetExport.id))[0]
    job = await submit(broker, settings.data_path, EXPORT_KIND, {"export_id": row["id"]}, creator)
    await DatasetExport.update({DatasetExport.job_id: job.id}).where(DatasetExport.id == row["id"])
    return job


async def run_export(ctx: JobContext) -> None:
    export_id = int(ctx.params["export_id"])
    row = await DatasetExport.select().where(DatasetExport.id == export_id).first()
    if row is None:
        raise NotFound(f"export {export_id} does not exist")
    record = await _version_row(row["version"])
    items = await all_items(row["version"])
    kept, gone = await exporter.left_out(items)
    await exporter.mark(export_id, status="building", left_out=gone)
    target = exporter.final_path(ctx.settings, row["version"], export_id, row["format"])
    ctx.log(f"writing {len(kept)} pairs of version {row['version']} as {row['format']} ({len(gone)} left out)")
    try:
        report = await exporter.write_export(ctx, record, kept, row["format"], target)
    except JobCancelled:
        await exporter.mark(export_id, status="cancelled")
        raise
    except BaseException:
        await exporter.mark(export_id, status="failed")
        raise
    await exporter.mark(
        export_id, status="ready", path=str(target.relative_to(ctx.settings.data_path)), files=report["files"],
        bytes=report["bytes"], pairs=len(kept), report=report, finished_at=exporter.now(),
    )  # fmt: skip
    ctx.count("pairs", len(kept))
    ctx.count("files", report["files"])


# -- reading -----------------------------------------------------------------------------------
async def _version_row(version_id: int) -> dict[str, Any]:
    row = await DatasetVersion.select().where(DatasetVersion.id == version_id).first().output(load_json=True)
    if row is None:
        raise NotFound(f"dataset version {version_id} does not exist")
    return row  # type: ignore[no-any-return]


async def get_version(version_id: int) -> VersionOut:
    return msgspec.convert(await _version_row(version_id), VersionOut)


async def list_versions() -> VersionPage:
    rows = await (
        DatasetVersion.select(
            DatasetVersion.id, DatasetVersion.name, DatasetVersion.notes, DatasetVersion.created_at,
            DatasetVersion.created_by, DatasetVersion.content_hash, DatasetVersion.counts,
        )
        .order_by(DatasetVersion.id, ascending=False)
        .output(load_json=True)
    )  # fmt: skip
    return VersionPage(items=[msgspec.convert(r, VersionOut) for r in rows])


async def all_items(version_id: int) -> list[dict[str, Any]]:
    rows = await (
        VersionItem.select()
        .where(VersionItem.version == version_id)
        .order_by(VersionItem.pair_id)
        .output(load_json=True)
    )
    return [{k: v for k, v in r.items() if k not in ("id", "version")} for r in rows]


async def version_items(version_id: int, limit: int, cursor: int | None = None) -> ItemPage:
    await _version_row(version_id)
    query = VersionItem.select().where(VersionItem.version == version_id).order_by(VersionItem.pair_id).limit(limit + 1)
    if cursor is not None:
        query = query.where(VersionItem.pair_id > cursor)
    rows = await query.output(load_json=True)
    items = [msgspec.convert(r, ItemOut) for r in rows[:limit]]
    return ItemPage(items=items, next_cursor=items[-1].pair_id if len(rows) > limit else None)


async def diff(a: int, b: int) -> DiffOut:
    """Pairs added (in b, not a), removed, relabelled (a label differs) and moved between splits."""
    left = {i["pair_id"]: i for i in await _items_or_404(a)}
    right = {i["pair_id"]: i for i in await _items_or_404(b)}
    relabelled = []
    for pid in sorted(left.keys() & right.keys()):
        la, lb = left[pid]["labels"], right[pid]["labels"]
        changed = {k: [la.get(k), lb.get(k)] for k in sorted(la.keys() | lb.keys()) if la.get(k) != lb.get(k)}
        if changed:
            relabelled.append(Relabel(pair_id=pid, fields=changed))
    return DiffOut(
        a=a,
        b=b,
        added=sorted(right.keys() - left.keys()),
        removed=sorted(left.keys() - right.keys()),
        relabelled=relabelled,
        moved=sorted(p for p in left.keys() & right.keys() if left[p]["split"] != right[p]["split"]),
    )


async def _items_or_404(version_id: int) -> list[dict[str, Any]]:
    await _version_row(version_id)
    return await all_items(version_id)


def _export_out(row: dict[str, Any]) -> ExportOut:
    url = f"/api/v1/datasets/exports/{row['id']}/download" if row["status"] == "ready" else None
    return msgspec.convert({**row, "version_id": row["version"], "download_url": url}, ExportOut)


async def list_exports(version_id: int) -> list[ExportOut]:
    await _version_row(version_id)
    rows = await (
        DatasetExport.select()
        .where(DatasetExport.version == version_id)
        .order_by(DatasetExport.id)
        .output(load_json=True)
    )
    return [_export_out(r) for r in rows]


async def get_export(export_id: int) -> ExportOut:
    row = await DatasetExport.select().where(DatasetExport.id == export_id).first().output(load_json=True)
    if row is None:
        raise NotFound(f"export {export_id} does not exist")
    return _export_out(row)


async def export_folder(settings: Settings, export_id: int) -> tuple[ExportOut, Any]:
    row = await DatasetExport.select().where(DatasetExport.id == export_id).first().output(load_json=True)
    if row is None:
        raise NotFound(f"export {export_id} does not exist")
    if row["status"] != "ready" or not row["path"]:
        raise ExportError(f"export {export_id} is {row['status']}, not ready")
    return _export_out(row), settings.data_path / row["path"]


# -- takedowns ---------------------------------------------------------------------------------
async def containing(image_id: int) -> tuple[list[int], list[int]]:
    """Versions that contain an image, and the exports of them on disk that include it."""
    rows = await VersionItem.select(VersionItem.version).where(
        (VersionItem.before_id == image_id) | (VersionItem.after_id == image_id)
    )
    version_ids = sorted({r["version"] for r in rows})
    exports = (
        await DatasetExport.select(DatasetExport.id, DatasetExport.left_out)
        .where(DatasetExport.version.is_in(version_ids or [0]) & (DatasetExport.status == "ready"))
        .output(load_json=True)
    )
    items = {
        (r["version"], r["pair_id"])
        for r in await VersionItem.select(VersionItem.version, VersionItem.pair_id).where(
            (VersionItem.before_id == image_id) | (VersionItem.after_id == image_id)
        )
    }
    pair_ids = {p for _, p in items}
    with_it = [e["id"] for e in exports if pair_ids - {x["pair_id"] for x in e["left_out"] or []}]
    return version_ids, sorted(with_it)


async def start_rebuild(broker: Broker, settings: Settings, creator: str | None, export_id: int) -> JobOut:
    """Write an export again from its version, leaving out pairs whose images were taken down
    since; its folder is replaced (in two renames) when the new one is complete."""
    await get_export(export_id)
    job = await submit(broker, settings.data_path, EXPORT_KIND, {"export_id": export_id}, creator)
    await DatasetExport.update({DatasetExport.job_id: job.id, DatasetExport.status: "queued"}).where(
        DatasetExport.id == export_id
    )
    return job
