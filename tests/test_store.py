import hashlib
import os
from pathlib import Path

import pytest

from furrsight.store import FileStore


async def test_same_bytes_are_stored_once_under_their_hash(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    digest, written = await store.put(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert written
    assert store.file_path(digest) == tmp_path / "files" / digest[:2] / digest
    assert (await store.put(b"hello")) == (digest, False)
    assert await store.read(digest) == b"hello"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ab" * 33, "G" * 64, ""])
def test_paths_come_only_from_hashes(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        FileStore(tmp_path).file_path(bad)


def test_interrupted_write_leaves_no_file_and_temp_files_are_swept(tmp_path: Path, monkeypatch) -> None:
    store = FileStore(tmp_path)
    digest = hashlib.sha256(b"x").hexdigest()

    def crash(*_args: object) -> None:  # the process dies between write and rename
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.put_sync(b"x", digest)
    monkeypatch.undo()
    assert not store.file_path(digest).exists()
    assert list(store.files.glob("**/.tmp-*")) == []
    leftover = store.file_path(digest).parent / ".tmp-crash"
    leftover.write_bytes(b"half")
    assert store.sweep_temp() == 1
    assert not leftover.exists()


def test_originals_are_made_durable_by_the_recorder_not_the_writer(tmp_path: Path, monkeypatch) -> None:
    """put_sync writes without fsync (ingest's workers); make_durable fsyncs files and folders."""
    store = FileStore(tmp_path)
    digest = hashlib.sha256(b"y").hexdigest()
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr("os.fsync", lambda fd: (synced.append(fd), real(fd))[1])
    assert store.put_sync(b"y", digest) is True
    assert synced == []
    assert store.put_sync(b"y", digest) is False  # rewritten (a torn leftover would be fixed), not new
    FileStore.make_durable([str(store.file_path(digest))])
    assert len(synced) == 2  # the file, then its folder
    with pytest.raises(FileNotFoundError):
        FileStore.make_durable([str(tmp_path / "gone")])


def test_the_older_two_level_layout_is_moved_into_place(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    digest = hashlib.sha256(b"old layout").hexdigest()
    old = tmp_path / "files" / digest[:2] / digest[2:4] / digest
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old layout")
    thumb = tmp_path / "thumbs" / digest[:2] / digest[2:4] / f"{digest}.webp"
    thumb.parent.mkdir(parents=True)
    thumb.write_bytes(b"webp")
    assert store.upgrade_layout() == 1
    assert store.file_path(digest).read_bytes() == b"old layout" and not old.parent.exists()
    assert not thumb.exists() and store.iter_files() == [digest]
    assert store.upgrade_layout() == 0
