"""Images: listing, uploads and folder imports (as jobs), all through ``ingest``."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterable

import msgspec
from dramatiq import Broker

from furrsight.auth import audit
from furrsight.images.ingest import POOL_AFTER, Ingestor, Unreadable
from furrsight.images.lanes import for_each
from furrsight.images.schemas import ChildOut, ImageOut, ImagePage, IngestResult, Provenance, SourceOut
from furrsight.images.tables import Image, Source, Takedown
from furrsight.jobs.runner import JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import submit
from furrsight.settings import Settings
from furrsight.store import FileStore

IMPORT_KIND = "images.import"


class ImportPathError(ValueError):
    """A folder import outside the import roots, or not a folder."""


# -- reading -----------------------------------------------------------------------------------
class ImageFilter(msgspec.Struct, kw_only=True):
    """What ``GET /api/v1/images`` and the gallery can filter by (all optional, combined with AND)."""

    state: str | None = None
    flag: str | None = None
    near_dup_group: int | None = None
    source: str | None = None  # a source kind (upload, import, scrape, split) or a plugin name
    parent: int | None = None  # the panels cut from this collage
    license: str | None = None  # seen under this licence (``unknown``: with none recorded)
    among: Any = None  # a subquery of image ids from a later stage (e.g. a breed's tagged images)


def _out(row: dict[str, Any]) -> ImageOut:
    flags = [f for f in (row.get("flags") or "").split(",") if f]
    return msgspec.convert({**row, "flags": flags}, ImageOut)


async def list_images(
    limit: int, before: int | None = None, state: str | None = None, where: ImageFilter | None = None
) -> ImagePage:
    """One page of images, newest first, in one query (the gallery must not do N+1)."""
    where = where or ImageFilter(state=state)
    query = Image.select().output(load_json=True).order_by(Image.id, ascending=False).limit(limit + 1)
    if before is not None:
        query = query.where(Image.id < before)
    if where.state:
        query = query.where(Image.state == where.state)
    if where.flag:
        query = query.where(Image.flags.like(f"%,{where.flag},%"))
    if where.near_dup_group is not None:
        query = query.where(Image.near_dup_group == where.near_dup_group)
    if where.parent is not None:
        query = query.where(Image.parent_id == where.parent)
    if where.among is not None:
        query = query.where(Image.id.is_in(where.among))
    if where.source:
        seen = Source.select(Source.image).where((Source.kind == where.source) | (Source.plugin == where.source))
        query = query.where(Image.id.is_in(seen))
    if where.license:
        licensed = Source.select(Source.image).where(
            Source.license.is_null() if where.license == "unknown" else Source.license == where.license
        )
        query = query.where(Image.id.is_in(licensed))
    rows = await query
    items = [_out(r) for r in rows[:limit]]
    return ImagePage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


async def get_image(image_id: int) -> ImageOut | None:
    row = await Image.select().output(load_json=True).where(Image.id == image_id).first()
    if row is None:
        return None
    sources = await Source.select().where(Source.image == image_id).order_by(Source.id)
    children = await (
        Image.select(Image.id, Image.panel, Image.panel_confidence, Image.crop)
        .output(load_json=True)
        .where(Image.parent_id == image_id)
        .order_by(Image.id)
    )
    out = _out(row)
    out.sources = [msgspec.convert({**s, "job_id": s["job"]}, SourceOut) for s in sources]
    out.children = [msgspec.convert(c, ChildOut) for c in children]
    return out


# -- for later stages: what they may know of images, without reading these tables -------------
async def usable_image_ids() -> list[int]:
    """Every image worth deriving something from (all but the failed ones), oldest first."""
    rows = await Image.select(Image.id).where(Image.state != "failed").order_by(Image.id)
    return [r["id"] for r in rows]


async def image_exists(image_id: int) -> bool:
    return bool(await Image.exists().where(Image.id == image_id))


async def originals(store: FileStore, ids: list[int]) -> list[tuple[int, Path]]:
    """The stored original of each image that exists, by id."""
    rows = await Image.select(Image.id, Image.sha256).where(Image.id.is_in(ids)).order_by(Image.id)
    return [(r["id"], store.file_path(r["sha256"])) for r in rows]


async def images_per_query() -> dict[str, int]:
    """How many distinct images each search query's scrapes found (the queries page's count)."""
    rows = await Source.raw(
        "SELECT query, COUNT(DISTINCT image) AS n FROM sources WHERE query IS NOT NULL GROUP BY query"
    )
    return {r["query"]: r["n"] for r in rows}


# -- uploads -----------------------------------------------------------------------------------
def staging_folder(settings: Settings) -> Path:
    """A new folder under ``incoming/`` for one upload (not yet created): uploads are written
    there before the job is queued, so that an accepted upload survives a web restart."""
    return settings.data_path / "incoming" / uuid.uuid4().hex


def upload_params(settings: Settings, folder: Path, files: Iterable[tuple[Path, str]]) -> dict[str, Any]:
    """The import job's params for files staged in ``folder`` (path, original name)."""
    staged = [{"path": str(path.relative_to(settings.data_path)), "name": name} for path, name in files]
    return {"source": "upload", "staging": str(folder.relative_to(settings.data_path)), "files": staged}


# -- folder imports ----------------------------------------------------------------------------
async def start_import(
    broker: Broker, settings: Settings, creator: str | None, *,
    path: str | None = None, staged: dict[str, Any] | None = None,
) -> JobOut:  # fmt: skip
    """The one way to start an import job (routes, CLI, schedules): a server folder below the
    import roots (``ImportPathError`` otherwise), or uploads already staged (``upload_params``'s
    params: accepted uploads are on disk before their job is queued)."""
    if (path is None) == (staged is None):
        raise ValueError("start_import: give a folder path or staged uploads")
    params = {"source": "import", "path": str(resolve_import_path(settings, path))} if path is not None else staged
    return await submit(broker, settings.data_path, IMPORT_KIND, params or {}, creator)


def resolve_import_path(settings: Settings, raw: str) -> Path:
    """The folder to import, if it is inside one of the configured import roots."""
    if not settings.import_roots:
        raise ImportPathError("folder import is off: no import roots are configured (FURRSIGHT_IMPORT_ROOTS)")
    try:
        path = Path(raw).expanduser()
    except RuntimeError as exc:  # ~name of no user on this server
        raise ImportPathError(f"{raw!r}: {exc}") from exc
    if not path.is_absolute():
        raise ImportPathError(f"{raw!r} is not an absolute path")
    real = path.resolve()
    roots = [Path(r).expanduser().resolve() for r in settings.import_roots]
    if not any(real == root or real.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise ImportPathError(f"{raw!r} is outside the import roots ({allowed})")
    if not real.is_dir():
        raise ImportPathError(f"{raw!r} is not a folder on the server")
    return real


def walk_folder(root: Path, allowed_roots: list[Path]) -> list[Path]:
    """Every regular file below ``root`` (a resolved folder inside the import roots; hidden files
    and folders skipped), each folder's files sorted, then its subfolders in order. Symlinked
    folders are not entered; a symlinked file is taken only if it leads to a regular file inside
    the import roots. A plain file needs no ``resolve``: below a resolved root, through folders
    that are not links, its path is its real path (``resolve`` and ``is_file`` on every file cost
    0.027 ms a file; ``scandir``'s entry types cost nothing more)."""
    found: list[Path] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted((e for e in listing if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError:  # unreadable or gone since: as os.walk, skipped
            continue
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                found.append(Path(entry.path))
            elif entry.is_symlink():
                real = Path(entry.path).resolve()
                if real.is_file() and any(real.is_relative_to(r) for r in allowed_roots):
                    found.append(Path(entry.path))
        pending.extend(Path(e.path) for e in reversed(entries) if e.is_dir(follow_symlinks=False))
    return found


# -- the import job ----------------------------------------------------------------------------
# Files a worker is handed at once. Each trip costs the job's process its event loop's turns, the
# pool's hand-over and the recorder's wake-ups; measured (bench/ingest.py, 1,000 photos, two
# workers): the job's process 0.38 ms a photo in trips of 8, 0.26 in 16, 0.21-0.26 in 32, and
# the workers, woken less, decode a little faster. The price: a batch whose worker dies is done
# again file by file (31 files redone for one hostile file), and progress moves 32 files a step.
IMPORT_BATCH = 32


def _record(ctx: JobContext, name: str, result: IngestResult) -> None:
    ctx.count(result.outcome)
    if result.children:
        ctx.count("collages_split")
        ctx.log(f"{name}: a collage, split into images {', '.join(map(str, result.children))}")
    if result.outcome == "refused":
        ctx.count(f"refused:{result.reason}")
        ctx.log(f"refused {name}: {result.reason}: {result.message}")


async def run_import(ctx: JobContext) -> None:
    """Ingest the staged uploads, or every file below a folder, a few files at a time."""
    settings = ctx.settings
    store = FileStore(settings.data_path)
    if ctx.params.get("source") == "upload":
        items = [(settings.data_path / f["path"], f["name"], "upload") for f in ctx.params["files"]]
    else:
        root = resolve_import_path(settings, ctx.params["path"])  # re-checked: settings may have changed
        roots = [Path(r).expanduser().resolve() for r in settings.import_roots]
        items = [(p, str(p), "import") for p in walk_folder(root, roots)]
    await ctx.set_total(len(items))
    ctx.log(f"{len(items)} files to ingest")

    async with Ingestor(store, settings, processes=settings.ingest.processes) as engine:
        if len(items) > POOL_AFTER:
            engine.start_pool()

        async def batch(chunk: list[tuple[Path, str, str]]) -> None:
            sources = [Provenance(kind=kind, file_name=name, job_id=ctx.job_id) for _, name, kind in chunk]  # type: ignore[arg-type]
            outcomes = await engine.ingest_files(
                [(path, src) for (path, _, _), src in zip(chunk, sources, strict=True)]
            )
            for (_, name, _), outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, Unreadable):
                    ctx.count("failed")
                    ctx.log(f"cannot read {name}: {outcome}")
                elif isinstance(outcome, Exception):  # one file's unexpected failure must not stop the job
                    ctx.count("failed")
                    ctx.log(f"failed {name}: {outcome!r}")
                else:
                    _record(ctx, name, outcome)
            await ctx.advance(len(chunk))

        size = min(IMPORT_BATCH, max(1, len(items) // engine.lanes))  # a few files: one a lane
        batches = [items[i : i + size] for i in range(0, len(items), size)]
        await for_each(batches, engine.lanes, batch)
    if ctx.params.get("staging"):
        shutil.rmtree(settings.data_path / ctx.params["staging"], ignore_errors=True)


# -- takedowns ---------------------------------------------------------------------------------
class TakedownError(ValueError):
    """A takedown or purge that cannot be done, in words (400 / 404)."""


async def takedown(image_id: int, reason: str, actor: str | None, address: str | None = None) -> bool:
    """Take an image down (later stages leave it and its pairs out from now on); audited.
    Returns False when it was down already (the first reason stays)."""
    if not reason.strip():
        raise TakedownError("a takedown needs a reason")
    if await Image.count().where(Image.id == image_id) == 0:
        raise LookupError(f"image {image_id} does not exist")
    if await Takedown.exists().where(Takedown.image == image_id):
        return False
    await Takedown.insert(Takedown(image=image_id, reason=reason.strip(), by=actor))
    await audit.record("image.takedown", actor, f"image:{image_id}", address, reason=reason.strip())
    return True


async def purge(store: FileStore, image_id: int, actor: str | None, address: str | None = None) -> None:
    """Remove a taken-down image's original and thumbnail from the store; audited. The rows stay
    (its takedown and provenance), so nothing refers to a row that vanished."""
    row = await Image.select(Image.sha256).where(Image.id == image_id).first()
    if row is None:
        raise LookupError(f"image {image_id} does not exist")
    if not await Takedown.exists().where(Takedown.image == image_id):
        raise TakedownError(f"image {image_id} is not taken down: take it down (with a reason) before purging it")
    store.delete(row["sha256"])
    await Takedown.update({Takedown.purged_at: datetime.now(UTC)}).where(Takedown.image == image_id)
    await Image.update({Image.state: "purged"}).where(Image.id == image_id)
    await audit.record("image.purge", actor, f"image:{image_id}", address, sha256=row["sha256"])


async def takedown_state(image_id: int) -> dict[str, Any] | None:
    return await Takedown.select().where(Takedown.image == image_id).first()  # type: ignore[no-any-return]
