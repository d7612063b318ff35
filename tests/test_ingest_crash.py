"""Issue 4, point 10: nothing half-written. Interrupt ingest at every step (an exception, and a
SIGKILL of a real process), then check that no file lacks a row and no row lacks a file, and
that ``doctor --deep`` repairs what is left. The module has a data directory of its own: the
checks look at the whole store, and doctor must not repair other tests' ingests in flight."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from furrsight.images.ingest import FAULT_ENV, STEP_NAMES, InjectedFault, ingest
from furrsight.images.sanity import deep_check
from furrsight.images.schemas import Provenance
from furrsight.images.tables import Image
from furrsight.settings import Settings
from furrsight.store import FileStore
from tests import corpus
from tests.conftest import ROOT, own_data

ALL_STEPS = STEP_NAMES + [f"child.{name}" for name in STEP_NAMES]


async def _consistent(store: FileStore) -> None:
    """Every original has its row and every row its original and thumbnail; no temp files."""
    shas = {r["sha256"] for r in await Image.select(Image.sha256)}
    assert set(store.iter_files()) == shas
    assert all(store.thumb_path(s).exists() for s in shas)
    assert not list(store.root.glob("*/**/.tmp-*"))


async def _finished(sha: str) -> None:
    row = await Image.select(Image.id, Image.state).where(Image.sha256 == sha).first()
    if row is None:
        return  # stopped before its row: as if it had never come in
    assert row["state"] == "processed"
    assert await Image.count().where(Image.parent_id == row["id"]) == 2


@pytest.fixture(scope="module")
async def own(migrated: Settings, tmp_root: Path) -> AsyncIterator[Settings]:
    async with own_data(tmp_root / "ingest-crash", migrated) as settings:
        yield settings


@pytest.fixture
def own_env(own: Settings) -> dict[str, str]:
    """The environment of this module's subprocesses: its own data directory."""
    return {**os.environ, "FURRSIGHT_DATA": str(own.data_path), "PYTHONPATH": str(ROOT)}


@pytest.fixture
async def clean_store(own: Settings) -> FileStore:
    await deep_check(own, grace_seconds=0)  # start from a consistent store (the SIGKILL tests leave debris)
    return FileStore(own.data_path)


@pytest.mark.parametrize("step", ALL_STEPS)
async def test_an_exception_at_any_step_leaves_nothing_half_written(
    own: Settings, clean_store: FileStore, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = corpus.side_by_side(6000 + ALL_STEPS.index(step))  # a collage: panels exercise child steps
    monkeypatch.setenv(FAULT_ENV, f"raise:{step}")
    with pytest.raises(InjectedFault):
        await ingest(clean_store, own, data, Provenance(kind="upload", file_name=f"crash-{step}.jpg"))
    monkeypatch.delenv(FAULT_ENV)
    await _consistent(clean_store)
    await deep_check(own, grace_seconds=0)  # finishes an interrupted split
    await _consistent(clean_store)
    await _finished(hashlib.sha256(data).hexdigest())


KILL_SCRIPT = """
import asyncio, sys
from furrsight.db.setup import open_database
from furrsight.images.ingest import ingest
from furrsight.images.schemas import Provenance
from furrsight.settings import load_settings
from furrsight.store import FileStore

settings = load_settings()
open_database(settings)
data = open(sys.argv[1], "rb").read()
source = Provenance(kind="import", file_name=sys.argv[1])
print(asyncio.run(ingest(FileStore(settings.data_path), settings, data, source)))
"""


@pytest.mark.parametrize("step", ["store_thumb", "record", "split", "child.store_thumb", "child.record"])
async def test_a_sigkill_at_a_step_is_repaired_by_doctor_deep(
    own_env: dict[str, str], clean_store: FileStore, tmp_path: Path, step: str
) -> None:
    data = corpus.side_by_side(6100 + len(step))
    path = tmp_path / "collage.jpg"
    path.write_bytes(data)
    env = {**own_env, FAULT_ENV: f"kill:{step}"}
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(path)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    old = time.time() - 3600  # doctor leaves young files alone (an ingest may be running): age them
    for base in (clean_store.files, clean_store.thumbs):
        for leftover in base.glob("**/*"):
            if leftover.is_file():
                os.utime(leftover, (old, old))
    cli = subprocess.run(
        [sys.executable, "-m", "furrsight", "doctor", "--deep"], env=own_env,
        capture_output=True, timeout=180, text=True,
    )  # fmt: skip
    assert "files without a row" in cli.stdout, cli.stdout + cli.stderr
    await _consistent(clean_store)
    await _finished(hashlib.sha256(data).hexdigest())


async def test_doctor_deep_finds_and_repairs_each_kind_of_mismatch(own: Settings, clean_store: FileStore) -> None:
    store = clean_store
    orphan = corpus.ordinary(6200)
    orphan_sha, _ = await store.put(orphan)
    await store.put_thumb(orphan_sha, b"thumb")
    lonely_thumb = hashlib.sha256(b"no such image").hexdigest()
    await store.put_thumb(lonely_thumb, b"thumb")
    temp = store.files / "ab" / ".tmp-crashed"
    temp.parent.mkdir(parents=True, exist_ok=True)
    temp.write_bytes(b"half")
    young_sha, _ = await store.put(corpus.ordinary(6201))  # an ingest in flight: left alone
    lost = await ingest(store, own, corpus.ordinary(6202), Provenance(kind="upload", file_name="lost.jpg"))
    lost_sha = hashlib.sha256(corpus.ordinary(6202)).hexdigest()
    store.file_path(lost_sha).unlink()
    unthumbed = await ingest(store, own, corpus.ordinary(6203), Provenance(kind="upload", file_name="t.jpg"))
    unthumbed_sha = hashlib.sha256(corpus.ordinary(6203)).hexdigest()
    store.thumb_path(unthumbed_sha).unlink()
    old = time.time() - 3600
    for path in (store.file_path(orphan_sha), store.thumb_path(orphan_sha), store.thumb_path(lonely_thumb), temp):
        os.utime(path, (old, old))

    found = {f.name: f.count for f in await deep_check(own, grace_seconds=600)}
    assert found["files without a row"] == 1 and found["thumbnails without a row"] == 2  # the orphan's, the lonely
    assert found["temp files of interrupted writes"] == 1
    assert found["rows whose file is missing"] == 1 and found["missing thumbnails"] == 1
    assert not store.exists(orphan_sha) and not temp.exists() and not store.thumb_path(lonely_thumb).exists()
    assert store.exists(young_sha)
    assert not await Image.exists().where(Image.id == lost.image_id)
    assert store.thumb_path(unthumbed_sha).exists() and unthumbed.image_id
    store.delete(young_sha)
    await _consistent(store)
