"""What the migrations that run their own SQL share: one transaction on a connection of their own
(table rebuilds, triggers, clean-ups piccolo's migration manager cannot express), and the
manager entry that runs it.

SQLite switches foreign keys on and off only outside a transaction, and a table rebuild must
have them off (dropping the old table would cascade), so these migrations run beside piccolo's
migration transaction (``wrap_in_transaction=False``), each in one ``BEGIN IMMEDIATE`` of its
own: all of it commits, or none of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

from furrsight.db.engine import connect


def in_one_transaction(
    path: str, body: Callable[[sqlite3.Connection], None], rebuilt: tuple[str, ...] | None = None
) -> None:
    """``body`` in one ``BEGIN IMMEDIATE`` transaction on a connection of its own: committed, or
    rolled back if anything raises. With ``rebuilt`` (the tables it rebuilds), foreign keys are
    off while it runs and checked before the commit for those tables, as parents or children:
    a key the rebuild broke rolls the whole migration back."""
    conn = connect(path)
    try:
        if rebuilt is not None:
            conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")
        try:
            body(conn)
            if rebuilt:
                broken = [r for r in conn.execute("PRAGMA foreign_key_check") if r[0] in rebuilt or r[2] in rebuilt]
                if broken:
                    raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:10]}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def raw_migration(
    migration_id: str, app_name: str, description: str, upgrade: Callable[[str], None]
) -> MigrationManager:
    """The piccolo migration that runs ``upgrade(database path)`` outside its own transaction."""
    manager = MigrationManager(
        migration_id=migration_id, app_name=app_name, description=description, wrap_in_transaction=False
    )

    async def run() -> None:
        engine = engine_finder()
        assert isinstance(engine, SQLiteEngine), engine
        upgrade(engine.path)

    manager.add_raw(run)
    return manager
