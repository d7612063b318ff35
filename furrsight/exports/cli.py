"""``furrsight export``: make a dataset version and write it in formats, as the web does (the
workers run the jobs), following each job with a progress bar; list versions. Ctrl-C cancels."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from furrsight.jobs.schemas import FINISHED, JobOut
from furrsight.settings import Settings, load_settings

app = typer.Typer(help="Dataset versions and their exports.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings(need_broker: bool = True) -> Settings:
    from furrsight.runstatus import live_broker_url

    settings = load_settings()
    url = settings.broker_url or live_broker_url(settings.data_path)
    if need_broker and not url:
        err.print(
            "[red]no broker: start `furrsight up` first (or set FURRSIGHT_BROKER_URL to the workers' broker)[/red]"
        )
        raise typer.Exit(2)
    return msgspec.structs.replace(settings, broker_url=url or "")


@app.command("version")
def version(
    name: str,
    notes: str = typer.Option("", help="what this version is for"),
    breed: str = typer.Option(None, help="only pairs of this breed"),
    service: str = typer.Option(None, help="only pairs with this service"),
    origin: str = typer.Option(None, help="only pairs of this origin (collage, post, similar, manual)"),
    min_confidence: float = typer.Option(None, help="only pairs whose weakest label is at least this sure"),
    license: list[str] = typer.Option(
        None, "--license", help="an allowed licence family or id (repeat; default: setting)"
    ),
    allow_unknown_license: bool = typer.Option(False, help="let images without a known licence in"),
    base: int = typer.Option(None, help="keep the splits of this version (default: the newest; 0: a fresh split)"),
    fmt: list[str] = typer.Option(
        None, "--format", help="then export it: hf-parquet, imagefolder, webdataset (repeat)"
    ),
) -> None:
    """Freeze the accepted pairs into a new dataset version, then write the formats asked for."""
    request = {
        "name": name, "notes": notes, "breed": breed, "service": service, "origin": origin,
        "min_confidence": min_confidence, "licenses": license or None, "allow_unknown_license": allow_unknown_license,
        "base": base,
    }  # fmt: skip
    ok = asyncio.run(_version_then_exports(_settings(), {k: v for k, v in request.items() if v is not None}, fmt or []))
    raise typer.Exit(0 if ok else 1)


@app.command("write")
def write(version_id: int, fmt: str = typer.Argument(..., metavar="FORMAT")) -> None:
    """Write an existing version in a format (hf-parquet, imagefolder, webdataset)."""
    ok = asyncio.run(_exports(_settings(), version_id, [fmt]))
    raise typer.Exit(0 if ok else 1)


@app.command("list")
def list_versions() -> None:
    """Versions with their counts and exports."""
    asyncio.run(_list(_settings(need_broker=False)))


async def _list(settings: Settings) -> None:
    from furrsight.db.setup import open_database
    from furrsight.exports import service

    open_database(settings)
    for v in (await service.list_versions()).items:
        c = v.counts
        console.print(
            f"[bold]{v.id}[/bold] {v.name}: {c['pairs']} pairs ({c['train']} train, {c['validation']} validation, "
            f"{c['test']} test)  {v.content_hash[:16]}",
            highlight=False,
        )
        for e in await service.list_exports(v.id):
            where = settings.data_path / "exports" / str(v.id) / f"{e.id}-{e.format}"
            console.print(f"    export {e.id} {e.format}: {e.status}  {where if e.status == 'ready' else ''}")


async def _start(settings: Settings, start: Any) -> JobOut | None:
    from furrsight.db.setup import open_database
    from furrsight.exports import service, tasks
    from furrsight.jobs.broker import create_broker
    from furrsight.jobs.service import JobError

    open_database(settings)
    broker = create_broker(settings)
    tasks.register(broker, settings)  # to send the job; the workers run it
    try:
        return await start(broker)  # type: ignore[no-any-return]
    except (service.ExportError, service.NotFound, JobError) as exc:
        err.print(f"[red]{exc}[/red]")
        return None
    finally:
        broker.close()


async def _version_then_exports(settings: Settings, request: dict[str, Any], formats: list[str]) -> bool:
    from furrsight.exports import service
    from furrsight.exports.schemas import VersionRequest

    try:
        data = msgspec.convert(request, VersionRequest)
    except msgspec.ValidationError as exc:
        err.print(f"[red]invalid version: {exc}[/red]")
        return False
    job = await _start(settings, lambda broker: service.start_version(broker, settings, "cli", data))
    if job is None or (job := await _follow(job.id, f"version {request['name']}")).status != "succeeded":
        return False
    version = await service.get_version(job.counters["version_id"])
    c = version.counts
    console.print(f"version {version.id} {version.name}: {c['pairs']} pairs, left out {c['left_out'] or 'none'}")
    return await _exports(settings, version.id, formats)


async def _exports(settings: Settings, version_id: int, formats: list[str]) -> bool:
    from furrsight.exports import service

    for fmt in formats:
        job = await _start(settings, lambda broker, f=fmt: service.start_export(broker, settings, "cli", version_id, f))
        if job is None or (await _follow(job.id, f"{fmt} of version {version_id}")).status != "succeeded":
            return False
    if formats:
        await _list_one(settings, version_id)
    return True


async def _list_one(settings: Settings, version_id: int) -> None:
    from furrsight.exports import service

    for e in await service.list_exports(version_id):
        if e.status == "ready":
            console.print(
                f"export {e.id} {e.format}: {settings.data_path / 'exports' / str(version_id) / f'{e.id}-{e.format}'}"
            )


async def _follow(job_id: int, what: str) -> JobOut:
    from furrsight.jobs.service import cancel_job, get_job

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as bar:
            shown = bar.add_task(what, total=None)
            while (job := await get_job(job_id)).status not in FINISHED:
                bar.update(shown, completed=job.progress_done, total=job.progress_total or None)
                await asyncio.sleep(0.3)
            bar.update(shown, completed=job.progress_done, total=max(job.progress_total, job.progress_done))
    except asyncio.CancelledError:  # Ctrl-C
        await cancel_job(job_id)
        err.print(f"job {job_id}: cancel requested")
        raise
    if job.status != "succeeded":
        err.print(f"[red]job {job_id} {job.status}: {job.error or ''}[/red]")
    return job
