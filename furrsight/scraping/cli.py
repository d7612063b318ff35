"""``furrsight scrape``: list plugins; start a scrape job and follow it with a progress bar."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from furrsight.jobs.schemas import FINISHED, JobOut
from furrsight.settings import Settings, load_settings

if TYPE_CHECKING:
    from furrsight.scraping.schemas import ScrapeRequest

app = typer.Typer(help="Scraper plugins and scrapes.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.command("plugins")
def plugins() -> None:
    """List scraper plugins, their params, and those that failed to load."""
    from furrsight.scraping.service import list_scrapers

    listed = list_scrapers(load_settings())
    for s in listed.items:
        required = set(s.params.get("required", []))
        names = ", ".join(f"{n}{'*' if n in required else ''}" for n in s.params.get("properties", {}))
        console.print(f"[bold]{s.name}[/bold]  {s.description}\n    params: {names}", highlight=False)
    for b in listed.broken:
        console.print(f"[red]broken[/red] {b.source}: {b.error}", highlight=False)


@app.command("run")
def run(
    plugin: str,
    params: str = typer.Option("{}", "--params", "-p", help='plugin params as JSON, e.g. \'{"query": "poodle"}\''),
    over_queries: bool = typer.Option(False, help="run once per enabled query"),
) -> None:
    """Start a scrape and follow it with a progress bar: the same job the web page starts (the
    workers run it, and the images it stores are queued for embedding). Ctrl-C cancels it."""
    from furrsight.runstatus import live_broker_url
    from furrsight.scraping.schemas import ScrapeRequest

    settings = load_settings()
    url = settings.broker_url or live_broker_url(settings.data_path)
    if not url:
        err.print(
            "[red]no broker: start `furrsight up` first (or set FURRSIGHT_BROKER_URL to the workers' broker)[/red]"
        )
        raise typer.Exit(2)
    try:
        request = ScrapeRequest(plugin=plugin, params=json.loads(params), over_queries=over_queries)
    except json.JSONDecodeError as exc:
        err.print(f"[red]--params: not JSON: {exc}[/red]")
        raise typer.Exit(2) from exc
    job = asyncio.run(_start_and_follow(msgspec.structs.replace(settings, broker_url=url), request))
    console.print(f"job {job.id} {job.status}: " + ", ".join(f"{k} {v}" for k, v in sorted(job.counters.items())))
    raise typer.Exit(0 if job.status == "succeeded" else 1)


async def _start_and_follow(settings: Settings, request: ScrapeRequest) -> JobOut:
    from furrsight.db.setup import open_database
    from furrsight.jobs.broker import create_broker, valkey_client, workers_alive
    from furrsight.jobs.service import JobError, cancel_job, get_job
    from furrsight.scraping import tasks
    from furrsight.scraping.service import ScrapeRequestError, start_scrape

    open_database(settings)
    broker = create_broker(settings)
    tasks.register(broker, settings)  # to send the job; the workers run it
    try:
        job = await start_scrape(broker, settings, "cli", request=request)
    except (ScrapeRequestError, JobError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2 if isinstance(exc, ScrapeRequestError) else 1) from exc
    finally:
        broker.close()
    client = valkey_client(settings)
    if not await workers_alive(client, settings):
        err.print("[yellow]no worker is running: the job waits in the queue until one starts[/yellow]")
    await client.aclose()
    try:
        return await _follow(job.id, get_job)
    except asyncio.CancelledError:  # Ctrl-C
        await cancel_job(job.id)
        err.print(f"job {job.id}: cancel requested")
        raise


async def _follow(job_id: int, get_job: Callable[[int], Awaitable[JobOut]]) -> JobOut:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        shown = bar.add_task(f"scrape {job_id}", total=None)
        while (job := await get_job(job_id)).status not in FINISHED:
            bar.update(shown, completed=job.progress_done, total=job.progress_total or None)
            await asyncio.sleep(0.5)
        bar.update(shown, completed=job.progress_done, total=max(job.progress_total, job.progress_done))
    return job
