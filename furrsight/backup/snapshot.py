"""Writing and reading backups, without the job machinery (the CLI calls these directly).

A backup is a folder ``furrsight-backup-<id>/`` holding

* ``furrsight.db``: the database, copied with SQLite's online backup API in one step — one read
  transaction, so one consistent snapshot, taken while the appliance keeps writing (in WAL mode a
  reader blocks no writer). sqlite-vec's tables are ordinary shadow tables and come along;
* ``files/ab/<sha256>``: the originals of the images *in that snapshot* (their list is read from
  the copy, not from the live database, so rows and files agree);
* ``models/`` when asked for;
* ``manifest.json``, written last: version, created, rows per table, each file's sha256 and size.

Thumbnails are left out: ``furrsight doctor --deep`` remakes them from the originals.

Everything is written into ``DEST/.partial-<id>/``, fsynced, and renamed to its final name only
once the manifest is on disk: a backup interrupted at any point leaves only a ``.partial-*``
folder, which restore refuses in words.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from furrsight import __version__
from furrsight.db.engine import connect
from furrsight.settings import Settings

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "furrsight.db"
PREFIX = "furrsight-backup-"
PARTIAL = ".partial-"
CHUNK = 1 << 20

Progress = Callable[[int, int], None]  # (done, total); may raise to stop


class BackupError(ValueError):
    """A backup or restore that cannot be done, in words."""


def _noop(done: int, total: int) -> None:
    pass


def _quiet(message: str) -> None:
    pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(src: Path, dst: Path) -> tuple[str, int]:
    """Copy a file, fsynced; returns the sha256 and size of what was copied."""
    digest = hashlib.sha256()
    size = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as reader, dst.open("wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest(), size


def file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _snapshot_db(settings: Settings, target: Path) -> dict[str, int]:
    """The online backup, in one step; returns rows per table of the copy."""
    source = connect(settings.db_path, settings.db_busy_timeout_ms)
    copy = connect(target)
    try:
        # pages=-1: all pages in one step, inside one read transaction. Stepping in chunks would let
        # another connection's writes restart the copy from the start (SQLite's rule), endlessly
        # under a busy import.
        source.backup(copy, pages=-1)
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        (check,) = copy.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise BackupError(f"the database copy does not pass quick_check: {check}")
        names = [
            r[0]
            for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if not r[0].startswith("sqlite_")
        ]
        # the names come from the copy's own schema, not from input
        return {name: copy.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}  # noqa: S608
    finally:
        copy.close()
        source.close()


def _snapshot_images(db: Path) -> list[tuple[str, str]]:
    """(sha256, state) of every image in the copy."""
    conn = connect(db)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT sha256, state FROM images ORDER BY id")]
    finally:
        conn.close()


def backup_to(
    settings: Settings,
    dest: Path,
    progress: Progress = _noop,
    *,
    models: bool = False,
    log: Callable[[str], None] = _quiet,
) -> Path:
    """Write a backup into ``dest`` (made if missing); returns the finished backup's folder."""
    dest = dest.expanduser().resolve()
    if not settings.db_path.exists():
        raise BackupError(f"no database at {settings.db_path}: nothing to back up")
    data = settings.data_path
    if dest == data or dest in data.parents:
        raise BackupError("the destination must not be the data directory or hold it")
    dest.mkdir(parents=True, exist_ok=True)
    ident = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
    partial = dest / f"{PARTIAL}{ident}"
    partial.mkdir()
    try:
        return _write(settings, dest, partial, ident, progress, models, log)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a failed or cancelled backup leaves nothing
        raise


def _write(
    settings: Settings, dest: Path, partial: Path, ident: str, progress: Progress, models: bool,
    log: Callable[[str], None],
) -> Path:  # fmt: skip
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    counts = _snapshot_db(settings, partial / DATABASE)
    db_sha, db_size = file_digest(partial / DATABASE)
    images = _snapshot_images(partial / DATABASE)
    sources: list[tuple[str, Path]] = []
    missing: list[str] = []
    files_root = settings.data_path / "files"
    for sha, state in images:
        path = files_root / sha[:2] / sha
        if path.is_file():
            sources.append((f"files/{sha[:2]}/{sha}", path))
        elif state != "purged":  # purged: taken down, its file removed on purpose
            missing.append(sha)
    if models and (settings.data_path / "models").is_dir():
        root = settings.data_path / "models"
        sources += [(f"models/{p.relative_to(root).as_posix()}", p) for p in sorted(root.rglob("*")) if p.is_file()]
    total = 1 + len(sources)
    progress(1, total)
    log(f"database copied: {sum(counts.values())} rows in {len(counts)} tables; {len(sources)} files to copy")
    files: dict[str, dict[str, Any]] = {DATABASE: {"sha256": db_sha, "size": db_size}}
    for done, (rel, path) in enumerate(sources, start=2):
        sha, size = _copy(path, partial / rel)
        if rel.startswith("files/") and sha != rel.rsplit("/", 1)[1]:
            raise BackupError(f"the store's {rel} does not match its name: run `furrsight doctor --deep`")
        files[rel] = {"sha256": sha, "size": size}
        progress(done, total)
    for folder in sorted({(partial / rel).parent for rel in files}, reverse=True):
        _fsync_dir(folder)
    manifest = {
        "format": "furrsight-backup", "version": FORMAT_VERSION, "furrsight": __version__, "created": created,
        "counts": counts, "images": len(images), "missing_originals": missing, "models": models,
        "thumbnails": "not included: `furrsight doctor --deep` remakes them", "files": files,
    }  # fmt: skip
    tmp = partial / f"{MANIFEST}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, partial / MANIFEST)
    _fsync_dir(partial)
    final = dest / f"{PREFIX}{ident}"
    os.rename(partial, final)
    _fsync_dir(dest)
    log(f"backup complete: {final}")
    return final


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of a finished backup, or a BackupError that says why ``src`` is not one."""
    if not src.is_dir():
        raise BackupError(f"{src} is not a folder")
    if src.name.startswith(PARTIAL):
        raise BackupError(f"{src} is an unfinished backup (interrupted before its manifest): take a new backup")
    if not (src / MANIFEST).is_file():
        raise BackupError(f"{src} has no {MANIFEST}: it is not a finished FurrSight backup")
    try:
        manifest: dict[str, Any] = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BackupError(f"{src / MANIFEST} is not valid JSON: {exc}") from exc
    if manifest.get("format") != "furrsight-backup" or manifest.get("version") != FORMAT_VERSION:
        raise BackupError(f"{src} is not a version-{FORMAT_VERSION} FurrSight backup")
    return manifest


def verify(src: Path, progress: Progress = _noop) -> dict[str, Any]:
    """Check every file of a backup against its manifest; returns the manifest."""
    manifest = read_manifest(src)
    files: dict[str, dict[str, Any]] = manifest["files"]
    bad: list[str] = []
    for done, (rel, want) in enumerate(sorted(files.items()), start=1):
        path = src / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise BackupError(f"the manifest names a path outside the backup: {rel}")
        if not path.is_file() or file_digest(path) != (want["sha256"], want["size"]):
            bad.append(rel)
        progress(done, len(files))
    if bad:
        shown = ", ".join(bad[:5]) + (" …" if len(bad) > 5 else "")
        raise BackupError(f"{len(bad)} files of the backup are missing or do not match their checksum: {shown}")
    return manifest


def restore_from(src: Path, data_dir: Path, progress: Progress = _noop) -> dict[str, Any]:
    """Restore a backup into an empty (or missing) data directory; returns the manifest.

    Every checksum is verified before anything is written; the files are written into a hidden
    sibling folder, fsynced, and renamed into place, so a failed restore leaves the target empty."""
    src = src.expanduser().resolve()
    data_dir = data_dir.expanduser().resolve()
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore only into an empty or new data directory")
    files = list(read_manifest(src)["files"])
    total = 2 * len(files)
    manifest = verify(src, lambda done, _: progress(done, total))
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = data_dir.parent / f".restoring-{data_dir.name}-{secrets.token_hex(3)}"
    staging.mkdir()
    try:
        for done, rel in enumerate(sorted(files), start=len(files) + 1):
            sha, size = _copy(src / rel, staging / rel)
            want = manifest["files"][rel]
            if (sha, size) != (want["sha256"], want["size"]):  # changed since verify
                raise BackupError(f"{rel} changed while it was restored")
            progress(done, total)
        for folder in sorted({(staging / rel).parent for rel in files}, reverse=True):
            _fsync_dir(folder)
        if data_dir.exists():
            data_dir.rmdir()  # empty, checked above
        os.rename(staging, data_dir)
        _fsync_dir(data_dir.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def list_backups(dest: Path) -> list[dict[str, Any]]:
    """Finished backups in a folder, newest first (``.partial-*`` folders are not backups)."""
    if not dest.is_dir():
        return []
    out = []
    for folder in sorted(dest.glob(f"{PREFIX}*"), reverse=True):
        try:
            manifest = read_manifest(folder)
        except BackupError:
            continue
        size = sum(f["size"] for f in manifest["files"].values())
        out.append({"name": folder.name, "created": manifest["created"], "files": len(manifest["files"]),
                    "bytes": size, "images": manifest["images"], "models": manifest["models"]})  # fmt: skip
    return out
