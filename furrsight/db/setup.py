"""Open the database for this process and bring its schema up to date."""

from __future__ import annotations

import importlib
import importlib.util
import io
from contextlib import redirect_stdout

from piccolo.apps.migrations.commands.forwards import run_forwards

from furrsight.db.engine import Database
from furrsight.db.piccolo_conf import APP_REGISTRY, DATABASE
from furrsight.settings import Settings


def open_database(settings: Settings) -> Database:
    DATABASE.open(settings)
    return DATABASE


async def migrate(settings: Settings) -> str:
    """Run every pending migration of every app; returns piccolo's report."""
    open_database(settings)
    out = io.StringIO()
    with redirect_stdout(out):
        result = await run_forwards(app_name="all")
    if not result.success:
        raise RuntimeError(f"migration failed: {result.message}\n{out.getvalue()}")
    from furrsight.store import FileStore  # the file store's layout is part of the data's shape

    store = FileStore(settings.data_path)
    moved = store.upgrade_layout()
    store.make_layout()
    seeded = await seed_apps()
    return (
        out.getvalue()
        + (f"moved {moved} originals to the one-level layout\n" if moved else "")
        + "".join(f"{app}: added {n} {what}\n" for app, counts in seeded.items() for what, n in counts.items() if n)
    )


async def seed_apps() -> dict[str, dict[str, int]]:
    """Each app's shipped data (``furrsight.<app>.seed.seed()``, where an app has one), added after
    the schema is up to date. Looked up by name so that ``db`` imports no feature."""
    done: dict[str, dict[str, int]] = {}
    for name in APP_REGISTRY.app_configs:
        module = f"furrsight.{name}.seed"
        if importlib.util.find_spec(module) is not None:
            done[name] = await importlib.import_module(module).seed()
    return done


def database_bytes(settings: Settings) -> int:
    """The database's size on disk: the file and its write-ahead log."""
    files = [settings.db_path, settings.db_path.with_name(settings.db_path.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists())
