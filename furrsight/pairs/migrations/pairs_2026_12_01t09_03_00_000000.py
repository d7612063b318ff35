"""Pairs: ids never reused (AUTOINCREMENT), the same two images at most one pair whichever way
round (a unique index on the lower and higher image id), never one image twice (triggers)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T09:03:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "pair constraints"

TABLES = ("pairs", "pair_services", "pair_history")
SQL = [
    "CREATE UNIQUE INDEX IF NOT EXISTS pairs_two_images ON pairs (min(before, after), max(before, after))",
    """CREATE TRIGGER IF NOT EXISTS pairs_distinct_insert BEFORE INSERT ON pairs WHEN NEW.before IS NULL OR NEW.after IS NULL OR NEW.before = NEW.after
       BEGIN SELECT RAISE(ABORT, 'a pair needs two different images'); END""",
    """CREATE TRIGGER IF NOT EXISTS pairs_distinct_update BEFORE UPDATE OF before, after ON pairs
       WHEN NEW.before IS NULL OR NEW.after IS NULL OR NEW.before = NEW.after
       BEGIN SELECT RAISE(ABORT, 'a pair needs two different images'); END""",
    "CREATE UNIQUE INDEX IF NOT EXISTS pair_services_one ON pair_services (pair, service_id)",
]


async def _autoincrement(engine, table: str) -> None:  # type: ignore[no-untyped-def]
    """Rebuild ``table`` (new and empty here) with ``AUTOINCREMENT`` on its id."""
    rows = await engine.run_ddl(f"SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
    ddl = rows[0]["sql"]
    if "AUTOINCREMENT" in ddl:
        return
    rebuilt = ddl.replace(f'CREATE TABLE "{table}"', f'CREATE TABLE "{table}_rebuild"', 1).replace(
        "PRIMARY KEY", "PRIMARY KEY AUTOINCREMENT", 1
    )
    indexes = await engine.run_ddl(f"SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}' AND sql IS NOT NULL")
    await engine.run_ddl(rebuilt)
    await engine.run_ddl(f'INSERT INTO "{table}_rebuild" SELECT * FROM "{table}"')
    await engine.run_ddl(f'DROP TABLE "{table}"')
    await engine.run_ddl(f'ALTER TABLE "{table}_rebuild" RENAME TO "{table}"')
    for index in indexes:
        await engine.run_ddl(index["sql"])


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="pairs", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for table in TABLES:
            await _autoincrement(engine, table)
        for statement in SQL:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
