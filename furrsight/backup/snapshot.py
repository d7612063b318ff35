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

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from furrsight import __version__
from furrsight.backup.files import (
    DATABASE,
    FORMAT_VERSION,
    MANIFEST,
    PARTIAL,
    PREFIX,
    BackupError,
    Progress,
    copy_file,
    file_digest,
    noop,
    quiet,
)  # fmt: skip
from furrsight.db.engine import connect
from furrsight.settings import Settings
from furrsight.store import fsync_path


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
    progress: Progress = noop,
    *,
    models: bool = False,
    log: Callable[[str], None] = quiet,
) -> Path:
    """Write a backup into ``dest`` (made if missing); returns the finished backup's folder."""
    dest = dest.expanduser().resolve()
    if not settings.db_path.exists():
        raise BackupError(f"no database at {settings.db_path}: nothing to back up")
    data = settings.data_path
    if dest == data or dest in data.parents:
        raise BackupError("the destination must not be the data directory or hold it")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot make the destination {dest}: {exc.strerror or exc}") from exc
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
    created = datetime.now(UTC).isoformat(timespec="microseconds")  # orders backups made within a second
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
        try:
            sha, size = copy_file(path, partial / rel)
        except FileNotFoundError:  # removed since the snapshot (a purge): its row says so in the manifest
            (partial / rel).unlink(missing_ok=True)
            missing.append(rel.rsplit("/", 1)[1] if rel.startswith("files/") else rel)
            log(f"{rel} was removed after the snapshot: not in the backup")
            progress(done, total)
            continue
        if rel.startswith("files/") and sha != rel.rsplit("/", 1)[1]:
            raise BackupError(f"the store's {rel} does not match its name: run `furrsight doctor --deep`")
        files[rel] = {"sha256": sha, "size": size}
        progress(done, total)
    for folder in sorted({(partial / rel).parent for rel in files}, reverse=True):
        fsync_path(folder)
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
    fsync_path(partial)
    final = dest / f"{PREFIX}{ident}"
    os.rename(partial, final)
    fsync_path(dest)
    log(f"backup complete: {final}")
    return final
