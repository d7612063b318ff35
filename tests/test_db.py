import asyncio

from furrsight.db.piccolo_conf import DATABASE
from furrsight.jobs.tables import Job
from furrsight.settings import Settings


async def test_sqlite_vec_is_loaded_on_piccolo_connections(migrated: Settings) -> None:
    rows = await Job.raw("select vec_version() as v")
    assert rows[0]["v"].startswith("v")


async def test_database_is_in_wal_mode(migrated: Settings) -> None:
    rows = await Job.raw("pragma journal_mode")
    assert rows[0]["journal_mode"] == "wal"


async def test_concurrent_read_then_write_transactions_all_succeed(migrated: Settings) -> None:
    job = Job(kind="test.counter", params={}, counters={"n": 0})
    await job.save()

    async def bump() -> None:
        async with DATABASE.write_transaction():
            row = await Job.select(Job.counters).where(Job.id == job.id).first().output(load_json=True)
            await asyncio.sleep(0.01)
            await Job.update({Job.counters: {"n": row["counters"]["n"] + 1}}).where(Job.id == job.id)

    await asyncio.gather(*(bump() for _ in range(8)))
    row = await Job.select(Job.counters).where(Job.id == job.id).first().output(load_json=True)
    assert row["counters"]["n"] == 8


def test_the_sqlite_module_in_use_can_load_extensions() -> None:
    import sqlite3

    from furrsight.db.sqlite_compat import ORIGIN

    assert ORIGIN in ("stdlib", "pysqlite3")
    assert hasattr(sqlite3.connect(":memory:"), "enable_load_extension")
