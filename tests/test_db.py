import asyncio
import importlib.util
import json
import sqlite3

import pytest

from furrsight.db.engine import compiled
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

    bundled = importlib.util.find_spec("pysqlite3") is not None  # pysqlite3-binary, where it has a wheel
    assert ("pysqlite3" if bundled else "stdlib") == ORIGIN
    assert hasattr(sqlite3.connect(":memory:"), "enable_load_extension")


def test_only_one_copy_of_sqlite_is_loaded_into_a_process() -> None:
    """Two SQLite libraries in one process break SQLite's POSIX locks (and deadlocked here)."""
    import subprocess
    import sys

    code = (
        "import furrsight, furrsight.app, furrsight.worker, sqlite3\n"
        "sqlite3.connect(':memory:').execute('select 1')\n"
        "maps = open('/proc/self/maps').read()\n"
        "libs = {line.split()[-1] for line in maps.splitlines() if 'sqlite3' in line.split()[-1]}\n"
        "print(sorted(libs))\n"
        "both = any('libsqlite3' in x or 'lib-dynload' in x for x in libs) and any('pysqlite3' in x for x in libs)\n"
        "raise SystemExit(1 if both else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_write_calls_and_write_transactions_queue_together_without_lost_updates(migrated: Settings) -> None:
    job = Job(kind="test.counter", params={}, counters={"n": 0})
    await job.save()

    def bump_sql(conn: sqlite3.Connection) -> None:  # one thread call, plain SQL
        (counters,) = conn.execute("SELECT counters FROM jobs WHERE id = ?", (job.id,)).fetchone()
        conn.execute(
            "UPDATE jobs SET counters = ? WHERE id = ?", (json.dumps({"n": json.loads(counters)["n"] + 1}), job.id)
        )

    async def bump_piccolo() -> None:
        async with DATABASE.write_transaction():
            row = await Job.select(Job.counters).where(Job.id == job.id).first().output(load_json=True)
            await asyncio.sleep(0.01)
            await Job.update({Job.counters: {"n": row["counters"]["n"] + 1}}).where(Job.id == job.id)

    await asyncio.gather(*(DATABASE.write_call(bump_sql) for _ in range(8)), *(bump_piccolo() for _ in range(8)))
    row = await Job.select(Job.counters).where(Job.id == job.id).first().output(load_json=True)
    assert row["counters"]["n"] == 16


async def test_a_write_call_that_fails_writes_nothing(migrated: Settings) -> None:
    job = Job(kind="test.rollback", params={}, counters={"n": 0})
    await job.save()

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE jobs SET kind = 'test.changed' WHERE id = ?", (job.id,))
        raise ValueError("stop")

    with pytest.raises(ValueError, match="stop"):
        await DATABASE.write_call(half_then_fail)
    assert await Job.select(Job.kind).where(Job.id == job.id).first() == {"kind": "test.rollback"}
    with pytest.raises(RuntimeError, match="wait for itself"):
        async with DATABASE.write_transaction():
            await DATABASE.write_call(lambda conn: None)


async def test_a_read_call_gives_the_rows_piccolo_gives(migrated: Settings) -> None:
    job = Job(kind="test.read", params={"a": 1}, counters={"n": 2})
    await job.save()
    query = Job.select().where(Job.id == job.id)
    sql, args = compiled(query)
    rows = await DATABASE.read_call(lambda conn: [dict(r) for r in conn.execute(sql, args)])
    assert rows == await query
