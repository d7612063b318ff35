"""``furrsight``: up, serve, worker, migrate, doctor, status, settings (and the features' groups: users, models,
scrape, export)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from furrsight.auth.cli import app as users_app
from furrsight.settings import Settings, SettingsError, iter_settings_docs, load_settings

app = typer.Typer(help="FurrSight: build a before/after dog-grooming dataset on one machine.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
app.add_typer(users_app, name="users")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def _migrate(settings: Settings) -> None:
    from furrsight.db.setup import migrate as run_migrations

    asyncio.run(run_migrations(settings))


def _prepare_metrics(settings: Settings, role: str) -> None:
    """A clean metrics folder for this command and the processes it starts (see docs/operations.md)."""
    from furrsight.metrics.folder import prepare

    prepare(settings.data_path, role)


@app.command()
def migrate() -> None:
    """Create or update the database schema."""
    settings = _settings()
    _migrate(settings)
    console.print(f"database up to date: {settings.db_path}")


@app.command()
def serve(
    host: str = typer.Option(None, help="listen address (default: setting `host`)"),
    port: int = typer.Option(None, help="listen port (default: setting `port`)"),
) -> None:
    """Run the web process (migrates first)."""
    import uvicorn

    settings = _settings()
    _prepare_metrics(settings, "web")
    _migrate(settings)
    os.environ["FURRSIGHT_HOST"] = host or settings.host
    os.environ["FURRSIGHT_PORT"] = str(port or settings.port)
    uvicorn.run(
        "furrsight.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.auth.trusted_proxies,
        log_level=settings.log_level.lower(),
    )


WORKER_KINDS = ("default", "gpu")


def _worker_argvs(settings: Settings, only: str | None = None) -> dict[str, list[str]]:
    """The worker processes to run: the default-queue worker and the GPU-queue worker, or one of them."""
    from furrsight.jobs.broker import DEFAULT_QUEUE, GPU_QUEUE

    base = [
        sys.executable,
        "-m",
        "dramatiq",
        "furrsight.worker:setup",
        "--processes",
        "1",
        "--worker-shutdown-timeout",
        "30000",
    ]
    argvs = {
        "worker": [*base, "--threads", str(settings.jobs.worker_threads), "--queues", DEFAULT_QUEUE],
        # One process, one thread: each model is loaded once and the GPU runs one job at a time.
        "gpu-worker": [*base, "--threads", "1", "--queues", GPU_QUEUE],
    }
    if only is not None:
        name = "worker" if only == "default" else "gpu-worker"
        return {name: argvs[name]}
    return argvs


@app.command()
def worker(
    only: str = typer.Option(
        None,
        "--only",
        help="run only the default-queue worker (`default`) or only the GPU-queue worker (`gpu`), "
        "e.g. one systemd unit each",
    ),
) -> None:
    """Run the background workers (default queue, and the single-threaded GPU queue); a worker
    process that dies is restarted."""
    from furrsight.runstatus import run_dir
    from furrsight.supervisor import Supervisor

    if only is not None and only not in WORKER_KINDS:
        err.print(f"[red]--only takes {' or '.join(WORKER_KINDS)}, not {only!r}[/red]")
        raise typer.Exit(2)
    settings = _settings()
    if not settings.broker_url:
        err.print("[red]no broker: set FURRSIGHT_BROKER_URL (or use `furrsight up`)[/red]")
        raise typer.Exit(2)
    role = "worker" if only is None else f"worker-{only}"  # apart, so two units never share a file
    _prepare_metrics(settings, role)
    sup = Supervisor(status_path=run_dir(settings.data_path) / f"{role}.json")
    for name, argv in _worker_argvs(settings, only).items():
        sup.start(name, argv)
    raise typer.Exit(sup.run_until_signal())


@app.command()
def up(
    host: str = typer.Option(None, help="listen address (default: setting `host`)"),
    port: int = typer.Option(None, help="listen port (default: setting `port`)"),
) -> None:
    """Start everything on this machine: a private broker if none is configured, the database,
    the web process and the workers, restarting any that dies. Ctrl-C or SIGTERM stops them all."""
    from furrsight.runstatus import run_dir
    from furrsight.supervisor import (
        Supervisor,
        broker_command,
        broker_server_binary,
        child_env,
        free_port,
        python_argv,
        wait_for_broker,
    )

    settings = _settings()
    _prepare_metrics(settings, "up")
    sup = Supervisor(status_path=run_dir(settings.data_path) / "up.json")
    env = child_env()
    if not settings.broker_url:
        binary = broker_server_binary()
        if binary is None:
            err.print(
                "[red]no broker configured and no valkey-server/redis-server found: apt-get install redis-server[/red]"
            )
            raise typer.Exit(2)
        bport = free_port()
        folder = settings.data_path / "broker"
        folder.mkdir(parents=True, exist_ok=True)
        sup.start("broker", broker_command(binary, bport, folder))
        url = f"redis://127.0.0.1:{bport}/0"
        try:
            wait_for_broker(url)
        except RuntimeError as exc:
            sup.stop()
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        env = child_env(FURRSIGHT_BROKER_URL=url)
        sup.facts["broker_url"] = url  # for `furrsight scrape run` on this data directory
        sup.write_status()
        console.print(f"private broker: {url} ({binary})")
    try:
        _migrate(settings)
    except Exception:
        sup.stop()
        raise
    host = host or settings.host
    port = port or settings.port
    sup.start("web", python_argv("serve", "--host", host, "--port", str(port)), env=env)
    for name, argv in _worker_argvs(settings).items():
        sup.start(name, argv, env=env)
    console.print(
        f"FurrSight is starting at [bold]http://{host}:{port}/[/bold]  (data: {settings.data_path}; Ctrl-C stops)"
    )
    raise typer.Exit(sup.run_until_signal())


@app.command()
def doctor(
    deep: bool = typer.Option(False, "--deep", help="also compare database and file store, and repair mismatches"),
) -> None:
    """Check the installation; exits non-zero when a required check fails."""
    from furrsight.doctor import run_checks, run_deep

    settings = _settings()
    failed = False
    for check in run_checks(settings):
        colour = {"ok": "green", "warn": "yellow", "FAIL": "red"}[check.label]
        line = escape(f"{check.name}: {check.detail}")  # words, not markup: "onnxruntime-gpu[cuda,cudnn]"
        console.print(f"[{colour}]{check.label:>4}[/{colour}]  {line}", highlight=False)
        if not check.ok and check.fix:
            console.print(escape(f"      fix: {check.fix}"), highlight=False)
        failed = failed or (not check.ok and check.required)
    if deep:
        for finding in run_deep(settings):
            colour = "green" if finding.count == 0 else "yellow"
            detail = f"{finding.count}" + (f" ({finding.action})" if finding.count else "")
            console.print(f"[{colour}]deep[/{colour}]  {finding.name}: {detail}", highlight=False)
    raise typer.Exit(1 if failed else 0)


@app.command()
def status() -> None:
    """Services, broker, queues, workers, disk, models and GPU memory: one line each (ok / warn /
    down); exits 1 when something is down."""
    from furrsight.status.cli import report_lines

    settings = _settings()
    lines, down = asyncio.run(report_lines(settings))
    for state, name, detail in lines:
        colour = {"ok": "green", "warn": "yellow", "down": "red"}[state]
        console.print(f"[{colour}]{state:>4}[/{colour}]  {name}: {detail}", highlight=False)
    raise typer.Exit(1 if down else 0)


@app.command()
def backup(
    dest: Path = typer.Argument(..., help="folder to write the backup into (made if missing)"),
    models: bool = typer.Option(False, "--models", help="also copy the installed models"),
) -> None:
    """Back up the database and the originals it references, while FurrSight runs."""
    from furrsight.backup import cli as backup_cli

    raise typer.Exit(0 if backup_cli.backup(_settings(), dest, models) else 1)


@app.command()
def restore(
    src: Path = typer.Argument(..., help="a finished backup folder (furrsight-backup-…)"),
    into: Path = typer.Option(None, "--into", help="the data directory to restore into (default: FURRSIGHT_DATA)"),
) -> None:
    """Restore a backup into an empty data directory, then remake thumbnails (doctor --deep)."""
    from furrsight.backup import cli as backup_cli
    from furrsight.backup.service import after_restore
    from furrsight.doctor import run_deep

    settings = _settings()
    if into is not None:
        settings = load_settings({**os.environ, "FURRSIGHT_DATA": str(into)})
    if not backup_cli.restore(src, settings.data_path):
        raise typer.Exit(1)
    if unfinished := asyncio.run(after_restore(settings)):
        console.print(f"{unfinished} jobs unfinished in the backup are marked failed: retry them from the jobs page")
    for finding in run_deep(settings):
        detail = f"{finding.count}" + (f" ({finding.action})" if finding.count else "")
        console.print(f"deep  {finding.name}: {detail}", highlight=False)


@app.command("settings")
def show_settings() -> None:
    """List every setting with its environment variable and current value."""
    settings = _settings()
    table = Table("setting", "environment", "value", "meaning")
    for name, env, doc in iter_settings_docs():
        value: object = settings
        for part in name.split("."):
            value = getattr(value, part)
        shown = "(set)" if name.endswith("_secret") and value else str(value)  # secrets are never printed
        table.add_row(name, env, shown, doc)
    console.print(table)


def _add_feature_commands() -> None:
    from furrsight.exports.cli import app as export_app
    from furrsight.inference.cli import app as models_app
    from furrsight.scraping.cli import app as scrape_app

    app.add_typer(models_app, name="models")
    app.add_typer(scrape_app, name="scrape")
    app.add_typer(export_app, name="export")


_add_feature_commands()


def main() -> None:
    app(prog_name="furrsight")


if __name__ == "__main__":
    main()
