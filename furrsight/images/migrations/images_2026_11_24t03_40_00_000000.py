"""A change log of perceptual hashes, kept by triggers, so that every process's in-memory
near-duplicate index (``furrsight.images.neardup.PhashIndex``) catches up incrementally instead of
rescanning the images table."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T03:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "phash change log"

SQL = [
    "CREATE TABLE IF NOT EXISTS phash_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, image_id INTEGER NOT NULL)",
    """CREATE TRIGGER IF NOT EXISTS phash_log_insert AFTER INSERT ON images WHEN NEW.phash IS NOT NULL
       BEGIN INSERT INTO phash_log (image_id) VALUES (NEW.id); END""",
    """CREATE TRIGGER IF NOT EXISTS phash_log_update AFTER UPDATE OF phash ON images
       WHEN NEW.phash IS NOT OLD.phash
       BEGIN INSERT INTO phash_log (image_id) VALUES (NEW.id); END""",
    """CREATE TRIGGER IF NOT EXISTS phash_log_delete AFTER DELETE ON images WHEN OLD.phash IS NOT NULL
       BEGIN INSERT INTO phash_log (image_id) VALUES (OLD.id); END""",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="images", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in SQL:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
