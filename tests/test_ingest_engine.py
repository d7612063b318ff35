"""The ingest engine's parts: the worker pool, the recorder's group commits, the near-duplicate
index kept right across processes by the phash change log."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from furrsight.db.engine import connect
from furrsight.images import neardup, work
from furrsight.images.ingest import FAULT_ENV, Ingestor, Unreadable
from furrsight.images.recorder import Recorder, Tx
from furrsight.images.schemas import IngestResult, Provenance
from furrsight.images.tables import Image
from furrsight.settings import Settings
from furrsight.store import FileStore
from tests import corpus
from tests.conftest import ROOT


def _src(name: str) -> Provenance:
    return Provenance(kind="import", file_name=name)


async def _group(sha: str) -> int | None:
    row = await Image.select(Image.near_dup_group).where(Image.sha256 == sha).first()
    assert row is not None
    return row["near_dup_group"]  # type: ignore[no-any-return]


ANOTHER_PROCESS = """
import asyncio, sys
from furrsight.db.setup import open_database
from furrsight.images.ingest import ingest
from furrsight.images.schemas import IngestResult, Provenance
from furrsight.settings import load_settings
from furrsight.store import FileStore

settings = load_settings()
open_database(settings)
data = open(sys.argv[1], "rb").read()
print(asyncio.run(ingest(FileStore(settings.data_path), settings, data, Provenance(kind="import"))).outcome)
"""


async def test_near_duplicates_found_by_another_process_join_the_same_group(
    migrated: Settings, tmp_path: object
) -> None:
    """This process's in-memory index learns of rows another process wrote (from the log)."""
    store = FileStore(migrated.data_path)
    original = corpus.ordinary(7100)
    copy_a = corpus.near_duplicate(original)
    copy_b = corpus.near_duplicate(copy_a)
    async with Ingestor(store, migrated) as engine:
        assert (await engine.ingest(original, _src("original.jpg"))).outcome == "new"
    path = os.path.join(str(tmp_path), "copy.jpg")
    with open(path, "wb") as handle:
        handle.write(copy_a)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", ANOTHER_PROCESS, path], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "new", done.stderr[-2000:]
    async with Ingestor(store, migrated) as engine:
        result = await engine.ingest(copy_b, _src("copy-b.jpg"))
    group = await _group(hashlib.sha256(original).hexdigest())
    assert group is not None and result.near_dup_group == group
    assert await _group(hashlib.sha256(copy_a).hexdigest()) == group


def test_the_index_follows_inserts_updates_deletes_and_a_pruned_log(migrated: Settings) -> None:
    conn = connect(migrated.db_path)
    index = neardup.PhashIndex()
    try:
        conn.execute("BEGIN IMMEDIATE")
        index.catch_up(conn)
        rows = []
        for i, phash in enumerate(["00000000000000ff", "00000000000000fe", "ff00000000000000"]):
            cur = conn.execute(
                "INSERT INTO images (sha256, format, mime, width, height, bytes, state, created_at, phash, flags) "
                "VALUES (?, 'JPEG', 'image/jpeg', 1, 1, 1, 'processed', '2026-11-24 00:00:00+00:00', ?, '')",
                (hashlib.sha256(f"index-{i}".encode()).hexdigest(), phash),
            )
            rows.append(int(cur.lastrowid or 0))
        index.catch_up(conn)
        assert set(index.matches("00000000000000ff", 1, exclude=-1)) == set(rows[:2])
        conn.execute("UPDATE images SET phash = '0f0f0f0f0f0f0f0f' WHERE id = ?", (rows[1],))
        conn.execute("DELETE FROM images WHERE id = ?", (rows[0],))
        index.catch_up(conn)
        assert rows[0] not in index.matches("00000000000000ff", 8, exclude=-1)
        assert rows[1] in index.matches("0f0f0f0f0f0f0f0f", 0, exclude=-1)
        conn.execute("DELETE FROM phash_log")  # pruned past this index: it reloads in full
        conn.execute("INSERT INTO phash_log (image_id) VALUES (?)", (rows[2],))
        conn.execute("UPDATE images SET phash = 'ff000000000000ff' WHERE id = ?", (rows[2],))
        index.catch_up(conn)
        assert index.matches("ff000000000000ff", 0, exclude=-1) == [rows[2]]
    finally:
        conn.execute("ROLLBACK")
        conn.close()


async def test_a_failing_operation_is_rolled_back_alone_in_its_group(migrated: Settings) -> None:
    recorder = Recorder(migrated)
    sha = hashlib.sha256(b"recorder group").hexdigest()

    def good(tx: Tx) -> int:
        cur = tx.conn.execute(
            "INSERT INTO images (sha256, format, mime, width, height, bytes, state, created_at, flags) "
            "VALUES (?, 'PNG', 'image/png', 1, 1, 1, 'processed', '2026-11-24 00:00:00+00:00', '')",
            (sha,),
        )
        return int(cur.lastrowid or 0)

    def bad(tx: Tx) -> None:
        good(tx)  # the same sha256 again: the UNIQUE constraint fails
        raise AssertionError("not reached")

    try:
        outcomes = await asyncio.gather(recorder.run(good), recorder.run(bad), return_exceptions=True)
    finally:
        await recorder.aclose()
    assert isinstance(outcomes[0], int) and isinstance(outcomes[1], sqlite3.IntegrityError)
    assert recorder.transactions == 1  # both ran in one transaction
    assert await Image.count().where(Image.sha256 == sha) == 1
    await Image.delete().where(Image.sha256 == sha)  # a row without a file: not for other tests


async def test_operations_queued_together_commit_together(migrated: Settings) -> None:
    """Group commit: what the lanes queue while the recorder is busy becomes one transaction."""
    recorder = Recorder(migrated)

    def count(tx: Tx) -> int:
        return int(tx.conn.execute("SELECT count(*) FROM images").fetchone()[0])

    try:
        results = await asyncio.gather(*(recorder.run(count) for _ in range(20)))
    finally:
        await recorder.aclose()
    assert len(set(results)) == 1 and recorder.transactions == 1


async def test_many_files_in_flight_through_one_engine(migrated: Settings) -> None:
    store = FileStore(migrated.data_path)
    files = [corpus.ordinary(7200 + i) for i in range(24)]
    async with Ingestor(store, migrated) as engine:
        results = await asyncio.gather(*(engine.ingest(f, _src(f"many-{i}.jpg")) for i, f in enumerate(files)))
    assert [r.outcome for r in results] == ["new"] * len(files)
    assert len({r.image_id for r in results}) == len(files)


async def test_a_worker_killed_mid_file_is_replaced_and_the_file_refused_in_words(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder crash (here: the fault hook SIGKILLs the worker at `header`) breaks the pool;
    the engine starts a fresh one, tries once more, then refuses the file; the next file works."""
    store = FileStore(migrated.data_path)
    async with Ingestor(store, migrated, processes=2) as engine:
        await asyncio.to_thread(work.warm, 2)
        monkeypatch.setenv(FAULT_ENV, "kill:header")
        crashed = await engine.ingest(corpus.ordinary(7300), _src("crash.jpg"))
        monkeypatch.delenv(FAULT_ENV)
        fine = await engine.ingest(corpus.ordinary(7301), _src("fine.jpg"))
    assert crashed.outcome == "refused" and crashed.reason == "worker_crashed", crashed
    assert "retry" in (crashed.message or "")
    assert fine.outcome == "new"
    assert not await Image.exists().where(Image.sha256 == hashlib.sha256(corpus.ordinary(7300)).hexdigest())


WARM_POOL = """
import os, sys, time
from multiprocessing import forkserver
from furrsight.images import work

work.warm(2)
print(*work._pool._processes, forkserver._forkserver._forkserver_pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (not reaped yet by its parent) has ended
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_killed_job_process_leaves_no_pool_workers_behind() -> None:
    """SIGKILL (the OOM killer, a crash) of the process that owns the pool: its workers and the
    forkserver end too, instead of waiting on their queue forever."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", WARM_POOL], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 3 and all(_alive(p) for p in pids)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30  # the workers notice within moments; generous on a loaded machine
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if _alive(p)]


async def test_a_batch_whose_worker_dies_is_done_again_file_by_file(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Files handed to the workers by path, eight at a time: a decoder crash on one (the hook
    SIGKILLs the worker at that file's `header`) loses the batch's work; the batch is done again
    file by file, so only the file that crashes is refused, and an unreadable one is said so."""
    store = FileStore(migrated.data_path)
    paths = [tmp_path / f"batch-{i}.jpg" for i in range(4)]
    for i, path in enumerate(paths):
        path.write_bytes(corpus.ordinary(7400 + i))
    missing = tmp_path / "gone.jpg"
    async with Ingestor(store, migrated, processes=2) as engine:
        await asyncio.to_thread(work.warm, 2)
        monkeypatch.setenv(FAULT_ENV, f"kill:header@{paths[1].name}")
        outcomes = await engine.ingest_files([(p, _src(p.name)) for p in [*paths, missing]])
        monkeypatch.delenv(FAULT_ENV)
    results = [o for o in outcomes if isinstance(o, IngestResult)]
    assert [r.outcome for r in results] == ["new", "refused", "new", "new"]
    assert results[1].reason == "worker_crashed" and "retry" in (results[1].message or "")
    assert isinstance(outcomes[4], Unreadable) and "gone.jpg" in str(outcomes[4])
    assert not await Image.exists().where(Image.sha256 == hashlib.sha256(corpus.ordinary(7401)).hexdigest())
    assert len({r.image_id for r in results if r.outcome == "new"}) == 3


async def test_a_cancelled_ingest_whose_row_is_recorded_keeps_its_file(migrated: Settings) -> None:
    """A caller cancelled while its row waits for the write lock: the recorder still records the
    row (the operation is shielded), so the original it points at must stay."""
    store = FileStore(migrated.data_path)
    data = corpus.ordinary(7990)
    sha = hashlib.sha256(data).hexdigest()
    holder = connect(migrated.db_path)
    async with Ingestor(store, migrated) as ingestor:
        holder.execute("BEGIN IMMEDIATE")  # the recorder's group commit waits on this lock
        try:
            task = asyncio.create_task(ingestor.ingest(data, Provenance(kind="import", file_name="cancelled.jpg")))
            deadline = time.monotonic() + 30
            while not store.exists(sha):  # the original is written, its row is waiting to be recorded
                assert time.monotonic() < deadline and not task.done()
                await asyncio.sleep(0.02)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        while await Image.select(Image.id).where(Image.sha256 == sha).first() is None:
            assert time.monotonic() < deadline, "the shielded operation never recorded the row"
            await asyncio.sleep(0.02)
    assert store.exists(sha)
