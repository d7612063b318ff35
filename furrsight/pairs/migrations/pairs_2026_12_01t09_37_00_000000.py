"""Review: the queue asks for one status ordered by confidence (least first) — an index on
(status, confidence) answers it in order, without sorting every pair of that status."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T09:37:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "review queue index"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="pairs", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("CREATE INDEX IF NOT EXISTS pairs_status_confidence ON pairs (status, confidence)")

    manager.add_raw(run)
    return manager
