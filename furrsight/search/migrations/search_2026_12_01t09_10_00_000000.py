"""Vectors and tags go with their image.

The float-vector table of every model already embedded (``vec_<model>_f``, made on first use by
``furrsight.search.vectors``) is rebuilt with its id as a foreign key on ``images`` (``ON DELETE
CASCADE``) and the triggers ``vectors.link_ddl`` makes for new tables (copied here: a
migration stays as it ran); vectors and signatures of images that are
gone are dropped (until now a removed image kept its vector, and the next image, given the same
id, inherited it), and so are breed tags without their image.

Runs on a connection of its own, in one ``IMMEDIATE`` transaction (the vector tables are
search's own; nothing references them, so foreign keys can stay on).
"""

from __future__ import annotations

import sqlite3

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from furrsight.db.raw_migrations import in_one_transaction, raw_migration

ID = "2026-12-01T09:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "search: vectors and tags go with their image"


# each model's float table: vec_<model>_f beside its vec0 table vec_<model>
FLOAT_TABLES = r"""SELECT f.name FROM sqlite_master f JOIN sqlite_master v ON v.name = substr(f.name, 1, length(f.name) - 2)
    WHERE f.type = 'table' AND f.name LIKE 'vec\_%\_f' ESCAPE '\' AND f.sql NOT LIKE 'CREATE VIRTUAL%'
    AND v.sql LIKE 'CREATE VIRTUAL TABLE%'"""


def link_ddl(name: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {name}_f (id INTEGER PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE, "
        "embedding BLOB NOT NULL)",
        f"""CREATE TRIGGER IF NOT EXISTS {name}_f_needs_image BEFORE INSERT ON {name}_f
            WHEN NOT EXISTS (SELECT 1 FROM images WHERE id = NEW.id) BEGIN SELECT RAISE(IGNORE); END""",
        f"""CREATE TRIGGER IF NOT EXISTS {name}_f_gone AFTER DELETE ON {name}_f
            BEGIN DELETE FROM {name} WHERE rowid = OLD.id; END""",
    ]


def _link_vectors(conn: sqlite3.Connection) -> None:
    floats = [r[0] for r in conn.execute(FLOAT_TABLES)]
    for table in floats:
        name = table.removesuffix("_f")
        conn.execute(f'ALTER TABLE {table} RENAME TO "{table} old"')
        for statement in link_ddl(name):
            conn.execute(statement)
        conn.execute(f'INSERT INTO {table} (id, embedding) SELECT id, embedding FROM "{table} old"')  # noqa: S608
        conn.execute(f'DROP TABLE "{table} old"')
        conn.execute(f"DELETE FROM {name} WHERE rowid NOT IN (SELECT id FROM {table})")  # noqa: S608
    conn.execute("DELETE FROM breed_tags WHERE image IS NULL OR image NOT IN (SELECT id FROM images)")


def link_vectors(path: str) -> None:
    in_one_transaction(path, _link_vectors)  # foreign keys stay on: nothing references these tables


async def forwards() -> MigrationManager:
    return raw_migration(ID, "search", DESCRIPTION, link_vectors)
