"""``furrsight models``: list, pull, import, verify, remove (run here, with a progress bar)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from furrsight.inference.install import ModelStore, noncommercial_notice
from furrsight.inference.manifest import ModelError
from furrsight.settings import SettingsError, load_settings

app = typer.Typer(help="Local models: list, pull, import, verify, remove.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _store() -> ModelStore:
    try:
        return ModelStore(load_settings().data_path / "models")
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]{exc}[/red]")
    return typer.Exit(1)


@app.command("list")
def list_models() -> None:
    """The known models (catalogue + imported) and whether they are installed."""
    table = Table()
    table.add_column("name", no_wrap=True)
    for column in ("task", "runtime", "status"):
        table.add_column(column, no_wrap=True)
    table.add_column("licence", max_width=20, overflow="ellipsis", no_wrap=True)
    table.add_column("size", no_wrap=True)
    for m in _store().statuses():
        size = f"{m.size / 1e6:.0f} MB" if m.size else "?"
        table.add_row(m.name, m.task, m.runtime, m.status, m.license, size)
    console.print(table)


@app.command()
def pull(
    name: str,
    allow_unpinned: bool = typer.Option(
        False, "--allow-unpinned", help="Accept files the manifest does not pin; records the hash they came with."
    ),
    accept_licence: bool = typer.Option(
        False, "--accept-licence", help="Pull a model whose licence forbids commercial use (for non-commercial use)."
    ),
) -> None:
    """Download a model's files (resumes a partial download; refuses bytes whose SHA-256 is not the pinned one)."""
    columns: list[str | ProgressColumn] = [
        "{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    ]
    store = _store()
    try:
        manifest = store.manifest(name)
    except ModelError as exc:
        raise _fail(exc) from exc
    if not manifest.commercial_use:
        console.print(f"[yellow]{noncommercial_notice(manifest)}.[/yellow]")
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(name, total=None)
        try:
            manifest = store.pull(
                name,
                lambda done, total: bar.update(task, completed=done, total=total),
                allow_unpinned=allow_unpinned,
                accept_licence=accept_licence,
            )
        except (ModelError, OSError) as exc:
            raise _fail(exc) from exc
    for entry in manifest.unpinned():
        console.print(f"{entry.path}: unpinned, recorded sha256 {store.records(name).get(entry.path)}")
    console.print(f"{name} installed")


@app.command("import")
def import_model(name: str, path: Path) -> None:
    """Install files brought in by hand: PATH is the folder holding them (or the single file)."""
    try:
        _store().import_files(name, path.expanduser().resolve())
    except (ModelError, OSError) as exc:
        raise _fail(exc) from exc
    console.print(f"{name} imported from {path}")


@app.command()
def verify(name: str) -> None:
    """Re-hash the model's files against the recorded (or pinned) SHA-256."""
    try:
        problems = _store().verify(name)
    except ModelError as exc:
        raise _fail(exc) from exc
    for problem in problems:
        err.print(f"[red]{problem}[/red]")
    if problems:
        raise typer.Exit(1)
    console.print(f"{name}: all files intact")


@app.command()
def remove(name: str) -> None:
    """Delete an installed model's files."""
    try:
        _store().remove(name)
    except ModelError as exc:
        raise _fail(exc) from exc
    console.print(f"{name} removed")
