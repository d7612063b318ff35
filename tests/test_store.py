import ctypes
import hashlib
import mmap
import os
from pathlib import Path

import pytest

from furrsight.filesystems import filesystem_of
from furrsight.images.ingest import ingest
from furrsight.images.schemas import Provenance
from furrsight.images.service import originals
from furrsight.settings import Settings
from furrsight.store import FileStore, drop_cached, fsync_path
from tests import collages
from tests.images import photo


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
    assert (tmp_path / "files" / ".layout").exists()  # once per store: later starts do not look again
    stray = tmp_path / "files" / "cd" / "ef" / hashlib.sha256(b"late").hexdigest()
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"late")
    assert store.upgrade_layout() == 0 and stray.exists()


def test_a_new_images_files_are_written_in_place_and_a_torn_leftover_is_rewritten(tmp_path: Path) -> None:
    """``fresh`` (no row has these bytes): written straight to its path, no temp file, no rename;
    a file already there (a crash's torn leftover) is replaced atomically and is not new."""
    store = FileStore(tmp_path)
    digest = hashlib.sha256(b"whole").hexdigest()
    assert store.put_sync(b"whole", digest, fresh=True) is True
    assert store.file_path(digest).read_bytes() == b"whole"
    assert store.put_thumb_sync(digest, b"thumb", fresh=True) is True
    assert store.thumb_path(digest).read_bytes() == b"thumb"
    store.file_path(digest).write_bytes(b"who")  # torn by a crash mid-write
    assert store.put_sync(b"whole", digest, fresh=True) is False
    assert store.file_path(digest).read_bytes() == b"whole"
    assert store.put_thumb_sync(digest, b"thumb 2", fresh=True) is False
    assert store.thumb_path(digest).read_bytes() == b"thumb 2"
    assert list(tmp_path.glob("**/.tmp-*")) == []


def test_an_interrupted_in_place_write_removes_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path)
    digest = hashlib.sha256(b"z").hexdigest()

    def full(*_args: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.write", full)
    with pytest.raises(OSError, match="No space left"):
        store.put_sync(b"z", digest, fresh=True)
    monkeypatch.undo()
    assert not store.file_path(digest).exists()


def test_a_group_of_files_is_made_durable_at_once_and_a_missing_one_fails_its_own_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several files: each checked to be there, then one syncfs for their filesystem (no fsync
    per file); a file gone since fails only the group that named it. One file: fsync as before."""
    store = FileStore(tmp_path)
    digests = [hashlib.sha256(bytes([i])).hexdigest() for i in range(3)]
    for i, digest in enumerate(digests):
        store.put_sync(bytes([i]), digest, fresh=True)
    paths = [str(store.file_path(d)) for d in digests]
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr("os.fsync", lambda fd: (synced.append(fd), real(fd))[1])
    failed = FileStore.make_durable_groups([[paths[0]], [paths[1], str(tmp_path / "gone")], [paths[2]]])
    assert [type(f) for f in failed] == [type(None), FileNotFoundError, type(None)]
    assert synced == []  # one syncfs, no fsync
    assert FileStore.make_durable_groups([[paths[0]]]) == [None]
    assert len(synced) == 2  # one file: the file, then its folder


def test_the_layout_is_made_with_the_data_directory(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.make_layout()
    for base in (store.files, store.thumbs):
        assert sorted(p.name for p in base.iterdir()) == [f"{i:02x}" for i in range(256)]
    (store.files / "ab" / "keep").write_bytes(b"x")
    store.make_layout()  # again: nothing changes, nothing is lost
    assert (store.files / "ab" / "keep").read_bytes() == b"x"


def test_a_write_back_error_fails_every_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """syncfs reporting a write-back error (stood in for: the kernel's cannot be made here):
    none of the files is known to be safe, so no row may point at any of them."""
    import ctypes
    import errno

    store = FileStore(tmp_path)
    digests = [hashlib.sha256(bytes([i])).hexdigest() for i in range(2)]
    for i, digest in enumerate(digests):
        store.put_sync(bytes([i]), digest, fresh=True)

    def failing(_fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr("furrsight.store._SYNCFS", failing)
    failed = FileStore.make_durable_groups([[str(store.file_path(d))] for d in digests])
    assert [f.errno if f else None for f in failed] == [errno.EIO, errno.EIO]
    assert "syncfs" in str(failed[0])


def _resident_pages(path: Path) -> int:
    """How many of the file's pages are in the kernel's page cache (``mincore`` on a mapping)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            vec = ctypes.create_string_buffer(pages)
            assert libc.mincore(addr, size, vec) == 0, os.strerror(ctypes.get_errno())
            return sum(b & 1 for b in vec.raw)
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def test_drop_cached_empties_a_durable_files_pages_and_skips_what_is_gone(tmp_path: Path) -> None:
    if _fs_type(tmp_path) == "tmpfs":  # its pages are the files themselves: nothing to drop
        pytest.skip("the temporary folder is on tmpfs")
    path = tmp_path / "f"
    path.write_bytes(os.urandom(64 * 1024))
    assert _resident_pages(path) == 16
    fsync_path(path)  # dirty pages would only be queued for write-back
    drop_cached([str(path), str(tmp_path / "gone")])
    assert _resident_pages(path) == 0


async def test_ingested_originals_leave_the_page_cache_once_durable_thumbnails_stay(migrated: Settings) -> None:
    """A bulk import's originals (written once, read again once by the embedding job) must not
    push the database and the thumbnails the gallery reads out of memory."""
    if _fs_type(migrated.data_path) == "tmpfs":
        pytest.skip("the data directory is on tmpfs")
    data = photo(4077, size=(1200, 900))
    store = FileStore(migrated.data_path)
    result = await ingest(store, migrated, data, Provenance(kind="upload", file_name="cache.jpg"))
    assert result.outcome == "new"
    digest = hashlib.sha256(data).hexdigest()
    assert len(data) > 8 * mmap.PAGESIZE
    assert _resident_pages(store.file_path(digest)) == 0  # written, made durable by the recorder, dropped
    thumb = store.thumb_path(digest)
    assert _resident_pages(thumb) == (thumb.stat().st_size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    assert store.file_path(digest).read_bytes() == data


async def test_a_collages_original_is_dropped_once_its_panels_are_cut(migrated: Settings) -> None:
    """A collage's original is kept cached until its panels are cut from it (a folder import's
    worker reads it again), then dropped like any other; the panels' originals are dropped too."""
    if _fs_type(migrated.data_path) == "tmpfs":
        pytest.skip("the data directory is on tmpfs")
    data = collages.save(collages.captioned(41))
    store = FileStore(migrated.data_path)
    result = await ingest(store, migrated, data, Provenance(kind="upload", file_name="collage-cache.jpg"))
    assert result.outcome == "new" and len(result.children) == 2, result
    assert len(data) > 8 * mmap.PAGESIZE
    assert _resident_pages(store.file_path(hashlib.sha256(data).hexdigest())) == 0
    for panel in await originals(store, result.children):
        assert _resident_pages(panel[1]) == 0  # each panel's original, dropped once durable


def _fs_type(path: Path) -> str:
    fs = filesystem_of(path)
    return fs.kind if fs else ""


MOUNTINFO = """\
22 1 254:0 / / rw,relatime - ext4 /dev/vdz rw
23 22 0:21 / /proc rw,relatime - proc proc rw
30 22 254:1 / /fs-test/data rw,relatime shared:1 - ext4 /dev/mapper/vg-data rw
31 30 0:40 / /fs-test/data/cache rw,relatime - tmpfs tmpfs rw,size=1024k
32 22 0:41 / /fs-test/share rw,relatime - nfs4 server:/export rw,vers=4.2
33 22 0:42 / /fs-test/my\\040photos rw,relatime - xfs /dev/sdb1 rw
34 22 0:43 / /fs-test/share rw,relatime - fuse.sshfs lab@host:/x rw
"""


def test_the_filesystem_of_a_path_is_its_longest_mount_with_ext4_journals_told(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(MOUNTINFO)
    for name in ("vdz", "vg-data"):  # the kernel's names of the two ext4 devices
        (proc / "fs" / "ext4" / name).mkdir(parents=True)
    (proc / "fs" / "jbd2" / "vdz-8").mkdir(parents=True)  # only the root keeps a journal

    def of(path: str) -> str:
        return str(filesystem_of(path, proc=proc))

    assert of("/fs-test/elsewhere/x") == "ext4 (/dev/vdz), with a journal"
    assert of("/fs-test/data/furrsight") == "ext4 (/dev/mapper/vg-data) without a journal"
    assert of("/fs-test/data/cache/x") == "tmpfs (tmpfs)"  # the deeper mount
    assert of("/fs-test/data-other") == "ext4 (/dev/vdz), with a journal"  # a prefix of a name is not a parent
    assert of("/fs-test/my photos/a") == "xfs (/dev/sdb1)"  # an escaped space
    assert of("/fs-test/share/a") == "fuse.sshfs (lab@host:/x)"  # the later of two mounts on one point
    share = filesystem_of("/fs-test/share/a", proc=proc)
    assert share is not None and share.network and not share.in_memory and share.journal is None
    assert filesystem_of("/x", proc=tmp_path / "nothing") is None
    real = filesystem_of(tmp_path)
    assert real is not None and real.kind in Path("/proc/filesystems").read_text().split()
