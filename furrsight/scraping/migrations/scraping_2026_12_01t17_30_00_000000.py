"""A scraped URL's image is a foreign key: when the image is removed, the URL can be fetched again.

``scrape_urls.image_id`` named the image a URL gave without a foreign key, so an image removed
later (``doctor --deep`` removes one whose original was lost) left the row pointing at nothing,
still ``fetched``: no later run would fetch the URL again. Now it is ``REFERENCES images ON
DELETE SET NULL`` (indexed: a removal looks its URLs up), and a row that loses its image this
way becomes ``failed`` with the reason ``image_removed``, so "retry failed" and later runs fetch
it again. Rows already pointing at a removed image are marked the same way here.

SQLite cannot add a foreign key to a column, so the table is rebuilt the way SQLite documents
(https://www.sqlite.org/lang_altertable.html, "other kinds of table schema changes"): foreign
keys off, create the new table, copy, drop, rename, re-create its indexes, ``PRAGMA
foreign_key_check``, commit; on a connection of its own (foreign keys can only be switched off
outside a transaction).
"""

from __future__ import annotations

import sqlite3

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from furrsight.db.raw_migrations import in_one_transaction, raw_migration

ID = "2026-12-01T17:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "scrape_urls.image_id references images; a removed image's URL can be fetched again"

OLD = '"image_id" INTEGER DEFAULT null'
NEW = '"image_id" INTEGER REFERENCES "images" ("id") ON DELETE SET NULL DEFAULT null'
REMOVED = (
    "status = 'failed', reason = 'image_removed', "
    "message = 'the image fetched from this URL was removed from the store since (its file was lost): "
    "retry to fetch it again'"
)
AFTER = [
    "CREATE INDEX IF NOT EXISTS scrape_urls_image ON scrape_urls (image_id)",
    f"""CREATE TRIGGER IF NOT EXISTS scrape_urls_image_removed AFTER UPDATE OF image_id ON scrape_urls
       WHEN OLD.image_id IS NOT NULL AND NEW.image_id IS NULL AND NEW.status = 'fetched' BEGIN
       UPDATE scrape_urls SET {REMOVED} WHERE id = NEW.id; END""",  # noqa: S608 (our constant)
]


def _rebuild(conn: sqlite3.Connection) -> None:
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'scrape_urls'").fetchone()
    if NEW in sql:
        return
    if OLD not in sql:
        raise RuntimeError(f"unexpected scrape_urls table, not rebuilt: {sql}")
    indexes = conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'scrape_urls' AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY type, name"
    ).fetchall()
    columns = ", ".join(f'"{r[1]}"' for r in conn.execute('PRAGMA table_info("scrape_urls")'))
    conn.execute(sql.replace(OLD, NEW).replace('CREATE TABLE "scrape_urls"', 'CREATE TABLE "scrape_urls_new"', 1))
    conn.execute(f'INSERT INTO "scrape_urls_new" ({columns}) SELECT {columns} FROM "scrape_urls"')  # noqa: S608
    conn.execute('DROP TABLE "scrape_urls"')
    conn.execute('ALTER TABLE "scrape_urls_new" RENAME TO "scrape_urls"')
    for (extra,) in indexes:
        conn.execute(extra)


def _upgrade(conn: sqlite3.Connection) -> None:
    conn.execute(
        f"UPDATE scrape_urls SET {REMOVED}, image_id = NULL WHERE image_id IS NOT NULL"  # noqa: S608
        " AND NOT EXISTS (SELECT 1 FROM images WHERE images.id = scrape_urls.image_id)"
    )
    conn.execute("UPDATE scrape_urls SET job = NULL WHERE job IS NOT NULL AND job NOT IN (SELECT id FROM jobs)")
    _rebuild(conn)  # (and no key left broken from before: the check after the rebuild would refuse it)
    for statement in AFTER:
        conn.execute(statement)


def upgrade(path: str) -> None:
    in_one_transaction(path, _upgrade, rebuilt=("scrape_urls",))


async def forwards() -> MigrationManager:
    return raw_migration(ID, "scraping", DESCRIPTION, upgrade)
