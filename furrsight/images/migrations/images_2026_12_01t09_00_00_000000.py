"""Image ids are never reused, and what hangs on an image goes with it.

* ``images.id`` and ``sources.id`` become ``INTEGER PRIMARY KEY AUTOINCREMENT``: without it
  SQLite hands the highest freed id to the next row, and a new image inherited whatever a removed
  one left behind (its vector, above all); a new source could hide below a mark kept on source
  ids (pair mining reads "sources newer than id N"). SQLite cannot alter a column to
  AUTOINCREMENT, so each table is rebuilt the way SQLite documents (https://www.sqlite.org/lang_altertable.html, "other kinds of table
  schema changes"): foreign keys off, create the new table, copy, drop, rename, re-create its
  indexes and triggers, ``PRAGMA foreign_key_check``, commit. The new table's SQL is the old one
  with the id column changed, so every column, default and constraint stays as it was.
* ``AFTER DELETE`` triggers on images: panels of a removed collage are unlinked, and a
  near-duplicate group that loses a member ends (one member left) or is renamed after its next
  smallest id — whatever deletes the row (un-split, ``doctor --deep``, a later feature).
* ``state = 'embedded'`` (written by the search feature until now) becomes ``processed``: image
  state is the images feature's alone; search keeps which model embedded what in its own tables.

Foreign keys can only be switched off outside a transaction, so this migration runs on a
connection of its own instead of piccolo's migration transaction.
"""

from __future__ import annotations

import sqlite3

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from furrsight.db.raw_migrations import in_one_transaction, raw_migration

ID = "2026-12-01T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "images: AUTOINCREMENT ids, delete triggers, state owned by images"

TABLES = ("images", "sources")  # sources too: later stages keep marks on source ids (pair mining)
OLD_ID = '"id" INTEGER PRIMARY KEY NOT NULL'
NEW_ID = '"id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL'

TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS images_unlink_panels AFTER DELETE ON images BEGIN
       UPDATE images SET parent_id = NULL, crop = NULL, panel = NULL, panel_confidence = NULL
       WHERE parent_id = OLD.id; END""",
    """CREATE TRIGGER IF NOT EXISTS images_leave_group AFTER DELETE ON images
       WHEN OLD.near_dup_group IS NOT NULL BEGIN
       UPDATE images SET near_dup_group = NULL WHERE near_dup_group = OLD.near_dup_group
         AND (SELECT count(*) FROM images WHERE near_dup_group = OLD.near_dup_group) = 1;
       UPDATE images SET near_dup_group = (SELECT min(id) FROM images WHERE near_dup_group = OLD.near_dup_group)
       WHERE near_dup_group = OLD.near_dup_group
         AND NOT EXISTS (SELECT 1 FROM images WHERE id = OLD.near_dup_group AND near_dup_group = OLD.near_dup_group);
       END""",
]


def _autoincrement(conn: sqlite3.Connection, table: str) -> None:
    """Rebuild ``table`` with ``AUTOINCREMENT`` on its id, keeping rows, indexes and triggers."""
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    if "AUTOINCREMENT" in sql.upper():
        return
    if OLD_ID not in sql:
        raise RuntimeError(f"unexpected {table} table, not rebuilt: {sql}")
    extras = conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL "
        "ORDER BY type, name",
        (table,),
    ).fetchall()
    columns = ", ".join(f'"{r[1]}"' for r in conn.execute(f'PRAGMA table_info("{table}")'))
    conn.execute(sql.replace(OLD_ID, NEW_ID).replace(f'CREATE TABLE "{table}"', f'CREATE TABLE "{table}_new"', 1))
    conn.execute(f'INSERT INTO "{table}_new" ({columns}) SELECT {columns} FROM "{table}"')
    conn.execute(f'DROP TABLE "{table}"')
    # legacy: rename only the table; other schema objects that name it (foreign keys of other
    # tables, triggers) mean this table, and would fail to re-parse while it is missing
    conn.execute("PRAGMA legacy_alter_table = ON")
    conn.execute(f'ALTER TABLE "{table}_new" RENAME TO "{table}"')
    conn.execute("PRAGMA legacy_alter_table = OFF")
    for (extra,) in extras:
        conn.execute(extra)


def _upgrade(conn: sqlite3.Connection) -> None:
    for table in TABLES:
        _autoincrement(conn, table)
    for trigger in TRIGGERS:
        conn.execute(trigger)
    conn.execute("UPDATE images SET state = 'processed' WHERE state = 'embedded'")


def upgrade(path: str) -> None:
    in_one_transaction(path, _upgrade, rebuilt=TABLES)  # foreign keys off: dropping the old images would cascade


async def forwards() -> MigrationManager:
    return raw_migration(ID, "images", DESCRIPTION, upgrade)
