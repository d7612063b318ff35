"""``furrsight scrape``: list plugins, run a scrape here with a progress bar."""

from __future__ import annotations

import asyncio
import json
import secrets

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from furrsight.settings import load_settings

app = typer.Typer(help="Scraper plugins and scrapes.", no_args_is_help=True)
console = Console(soft_wrap=True)


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
    """Run a scrape in this process (no worker needed), showing its progress."""
    from furrsight.scraping.schemas import ScrapeRequest
    from furrsight.scraping.service import SCRAPE_KIND, ScrapeRequestError, validate_request

    settings = load_settings()
    try:
        job_params = validate_request(settings, ScrapeRequest(plugin=plugin, params=json.loads(params),
                                                              over_queries=over_queries))  # fmt: skip
    except (ScrapeRequestError, json.JSONDecodeError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    job = asyncio.run(_run(settings, SCRAPE_KIND, job_params))
    console.print(f"job {job.id} {job.status}: " + ", ".join(f"{k} {v}" for k, v in sorted(job.counters.items())))
    raise typer.Exit(0 if job.status == "succeeded" else 1)


async def _run(settings, kind, params):  # type: ignore[no-untyped-def]
    from furrsight.db.setup import migrate
    from furrsight.jobs.runner import run_job
    from furrsight.jobs.service import get_job
    from furrsight.jobs.tables import Job
    from furrsight.scraping.runner import run_scrape

    await migrate(settings)
    token = secrets.token_hex(8)
    row = Job(kind=kind, params=params, run_token=token, creator="cli")
    await row.save()
    task = asyncio.create_task(run_job(row.id, token, run_scrape, settings))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        shown = bar.add_task(f"scrape {row.id}", total=None)
        while not task.done():
            job = await get_job(row.id)
            bar.update(shown, completed=job.progress_done, total=job.progress_total or None)
            await asyncio.sleep(0.5)
    await task
    return await get_job(row.id)
