"""Issue 15, items 2 and 7: backups taken while the appliance writes, restored elsewhere.

Each test backs up a data directory of its own and restores into a new folder of its own."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from furrsight.backup.files import BackupError
from furrsight.backup.restore import list_backups, read_manifest, restore_from, verify
from furrsight.backup.service import KIND, backups_folder, finished_backups, run_backup
from furrsight.backup.snapshot import backup_to
from furrsight.db.engine import connect
from furrsight.db.setup import open_database
from furrsight.images.ingest import ingest
from furrsight.images.sanity import deep_check
from furrsight.images.schemas import Provenance
from furrsight.images.service import IMPORT_KIND, run_import
from furrsight.jobs.service import get_job
from furrsight.settings import Settings, load_settings
from furrsight.store import FileStore
from tests.conftest import ROOT, own_data, wait_for_job
from tests.images import photo
from tests.sites import start_inline


@asynccontextmanager
async def _own(tmp_root: Path, name: str, shared: Settings, images: int, seed: int) -> AsyncIterator[Settings]:
    """A migrated data directory of the test's own holding ``images`` photos."""
    async with own_data(tmp_root / name, shared) as settings:
        store = FileStore(settings.data_path)
        for n in range(images):
            await ingest(store, settings, photo(seed + n), Provenance(kind="upload", file_name=f"{n}.jpg"))
        yield settings


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _count(db: Path, table: str) -> int:
    return int(_rows(db, f'SELECT count(*) FROM "{table}"')[0][0])


FILES = 400  # enough that the import is still writing when the database is copied (batched ingest is quick)


async def test_a_backup_during_an_import_restores_the_same_rows_and_identical_files(
    migrated: Settings, tmp_root: Path
) -> None:
    folder = tmp_root / "imports" / "backup-during-import"
    folder.mkdir(parents=True)
    for seed in range(FILES):
        (folder / f"{seed}.jpg").write_bytes(photo(52_000 + seed))
    async with _own(tmp_root, "backup-during-import", migrated, images=3, seed=51_000) as src:
        job_id, task = await start_inline(src, {"source": "import", "path": str(folder)}, run_import, IMPORT_KIND)
        while _count(src.db_path, "images") < 5:  # the import is under way: it has stored some images
            assert not task.done(), (await get_job(job_id)).error
            await asyncio.sleep(0.01)
        snapshot_images: list[int] = []

        def progress(done: int, total: int) -> None:
            if done == 1:  # the database is copied: let the import write more before the files are copied
                snapshot_images.append(total - 1)
                deadline = time.monotonic() + 60
                while _count(src.db_path, "images") <= total - 1 and time.monotonic() < deadline:
                    time.sleep(0.05)

        backup = await asyncio.to_thread(backup_to, src, tmp_root / "backups-during-import", progress)
        await task
        assert (await get_job(job_id)).status == "succeeded"
        live_images = _count(src.db_path, "images")
        manifest = verify(backup)  # every checksum
        assert manifest["images"] == snapshot_images[0] < live_images  # the snapshot, not the live rows
        assert 5 <= manifest["images"] < 3 + FILES and live_images == 3 + FILES

        target = tmp_root / "restored-during-import"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = subprocess.run(
            [sys.executable, "-m", "furrsight", "restore", str(backup), "--into", str(target)],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "every checksum verified" in cli.stdout
        assert "1 jobs unfinished in the backup are marked failed" in cli.stdout  # the import, running then
        ((status, error),) = _rows(target / "furrsight.db", f"SELECT status, error FROM jobs WHERE id = {job_id}")
        assert status == "failed" and "retry it" in error

        for table, count in manifest["counts"].items():
            assert _count(target / "furrsight.db", table) == count, table
        restored = _rows(target / "furrsight.db", "SELECT id, sha256, bytes, width, height FROM images ORDER BY id")
        live = {r[0]: r for r in _rows(src.db_path, "SELECT id, sha256, bytes, width, height FROM images")}
        assert len(restored) == manifest["images"]
        assert all(live[r[0]] == r for r in restored)  # the same rows as the live database had then
        originals = sorted((target / "files").rglob("*"))
        originals = [p for p in originals if p.is_file()]
        assert len(originals) == manifest["images"]
        for path in originals:
            assert path.read_bytes() == (src.data_path / "files" / path.parent.name / path.name).read_bytes()
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name

        restored_settings = load_settings({**os.environ, "FURRSIGHT_DATA": str(target)})
        open_database(restored_settings)
        try:
            findings = await deep_check(restored_settings, grace_seconds=0)
        finally:
            open_database(src)
        assert {f.name: f.count for f in findings} == {f.name: 0 for f in findings}  # doctor --deep clean


async def test_restore_verifies_every_checksum_and_refuses_a_non_empty_target(
    migrated: Settings, tmp_root: Path
) -> None:
    async with _own(tmp_root, "backup-checksums", migrated, images=3, seed=53_000) as src:
        backup = backup_to(src, tmp_root / "backups-checksums")
    manifest = read_manifest(backup)
    assert set(manifest["files"]) == {"furrsight.db"} | {
        f"files/{sha[:2]}/{sha}" for (sha,) in _rows(backup / "furrsight.db", "SELECT sha256 FROM images")
    }
    assert manifest["counts"]["images"] == 3

    full = tmp_root / "not-empty"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(BackupError, match="is not empty"):
        restore_from(backup, full)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]

    broken = tmp_root / "backups-checksums" / "furrsight-backup-broken"
    shutil.copytree(backup, broken)
    victim = next(rel for rel in manifest["files"] if rel.startswith("files/"))
    data = bytearray((broken / victim).read_bytes())
    data[100] ^= 0xFF
    (broken / victim).write_bytes(bytes(data))
    target = tmp_root / "restored-broken"
    with pytest.raises(
        BackupError, match=f"1 files of the backup are missing or do not match their checksum: {victim}"
    ):
        restore_from(broken, target)
    assert not target.exists()
    assert not list(tmp_root.glob(".restoring-*"))

    good = tmp_root / "restored-good"
    good.mkdir()  # an empty folder is fine
    restore_from(backup, good)
    assert (good / "furrsight.db").read_bytes() == (backup / "furrsight.db").read_bytes()


async def test_models_come_along_only_when_asked_and_the_cli_backs_up(migrated: Settings, tmp_root: Path) -> None:
    async with _own(tmp_root, "backup-models", migrated, images=1, seed=55_000) as src:
        model = src.data_path / "models" / "tiny" / "model.onnx"
        model.parent.mkdir(parents=True)
        model.write_bytes(b"not really onnx" * 100)
        without = read_manifest(backup_to(src, tmp_root / "backups-models"))
        env = {**os.environ, "FURRSIGHT_DATA": str(src.data_path), "PYTHONPATH": str(ROOT)}
        cli = subprocess.run(
            [sys.executable, "-m", "furrsight", "backup", str(tmp_root / "backups-models"), "--models"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stdout + cli.stderr
        with_models = Path(cli.stdout.split("backup written: ")[1].strip())
    assert not [rel for rel in without["files"] if rel.startswith("models/")] and without["models"] is False
    manifest = read_manifest(with_models)
    assert manifest["files"]["models/tiny/model.onnx"] == {
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(), "size": 1500,
    }  # fmt: skip
    restore_from(with_models, tmp_root / "restored-models")
    assert (tmp_root / "restored-models" / "models" / "tiny" / "model.onnx").read_bytes() == model.read_bytes()
    assert [b["models"] for b in list_backups(tmp_root / "backups-models")] == [True, False]  # newest first


KILL_SCRIPT = """
import os, sys, time
from pathlib import Path
from furrsight.backup.snapshot import backup_to
from furrsight.settings import load_settings

def progress(done, total):
    if done == total // 2:
        Path(sys.argv[2]).write_text(str(done))
        time.sleep(600)

backup_to(load_settings(), Path(sys.argv[1]), progress)
"""


async def test_a_backup_killed_halfway_never_looks_complete(migrated: Settings, tmp_root: Path) -> None:
    async with _own(tmp_root, "backup-killed", migrated, images=6, seed=54_000) as src:
        dest, marker = tmp_root / "backups-killed", tmp_root / "backup-killed.halfway"
        env = {**os.environ, "FURRSIGHT_DATA": str(src.data_path), "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(dest), str(marker)], env=env)
        try:
            deadline = time.monotonic() + 120
            while not marker.exists():
                assert proc.poll() is None and time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    leftovers = list(dest.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".partial-")
    assert not (leftovers[0] / "manifest.json").exists()
    assert list_backups(dest) == []
    with pytest.raises(BackupError, match="is an unfinished backup"):
        restore_from(leftovers[0], tmp_root / "restored-killed")
    assert not (tmp_root / "restored-killed").exists()


async def test_the_backup_job_counts_its_files_and_lands_in_the_backups_folder(
    migrated: Settings, tmp_root: Path
) -> None:
    async with _own(tmp_root, "backup-job", migrated, images=4, seed=56_000) as src:
        job_id, task = await start_inline(src, {"models": False}, run_backup, KIND)
        await task
        job = await get_job(job_id)
        assert (job.status, job.counters, job.progress_done, job.progress_total) == ("succeeded", {"files": 5}, 5, 5)
        (listed,) = finished_backups(src)
        assert (listed["images"], listed["files"], listed["models"]) == (4, 5, False)
        assert [p.name for p in backups_folder(src).iterdir()] == [listed["name"]]  # no .partial- left
        assert read_manifest(backups_folder(src) / listed["name"])["counts"]["jobs"] == 1  # itself, running


async def test_the_backup_job_through_the_api(
    client: AsyncTestClient,
    viewer_client: AsyncTestClient,
    worker: object,
    migrated: Settings,  # type: ignore[type-arg]
) -> None:
    assert (await viewer_client.post("/api/v1/backups", json={})).status_code == 403
    answer = await client.post("/api/v1/backups", json={})
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert answer.headers["location"] == f"/api/v1/jobs/{job['id']}"
    done = await wait_for_job(client, job["id"], timeout=120)
    assert done["status"] == "succeeded", done
    assert done["progress_done"] == done["progress_total"] >= 1
    listed = (await client.get("/api/v1/backups")).json()
    assert listed and listed[0]["models"] is False
    assert (await viewer_client.get("/api/v1/backups")).status_code == 403
    page = await client.get("/admin/backups")
    assert page.status_code == 200 and listed[0]["name"] in page.text
