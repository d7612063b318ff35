"""Reading backups: the manifest, checking every checksum, restoring, listing the finished ones."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from furrsight.backup.files import (
    FORMAT_VERSION,
    MANIFEST,
    PARTIAL,
    PREFIX,
    BackupError,
    Progress,
    copy_file,
    file_digest,
    noop,
)  # fmt: skip
from furrsight.store import fsync_path


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


def verify(src: Path, progress: Progress = noop) -> dict[str, Any]:
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


def restore_from(src: Path, data_dir: Path, progress: Progress = noop) -> dict[str, Any]:
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
            sha, size = copy_file(src / rel, staging / rel)
            want = manifest["files"][rel]
            if (sha, size) != (want["sha256"], want["size"]):  # changed since verify
                raise BackupError(f"{rel} changed while it was restored")
            progress(done, total)
        for folder in sorted({(staging / rel).parent for rel in files}, reverse=True):
            fsync_path(folder)
        if data_dir.exists():
            data_dir.rmdir()  # empty, checked above
        os.rename(staging, data_dir)
        fsync_path(data_dir.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def list_backups(dest: Path) -> list[dict[str, Any]]:
    """Finished backups in a folder, newest first (``.partial-*`` folders are not backups)."""
    if not dest.is_dir():
        return []
    out = []
    for folder in dest.glob(f"{PREFIX}*"):
        try:
            manifest = read_manifest(folder)
        except BackupError:
            continue
        size = sum(f["size"] for f in manifest["files"].values())
        out.append({"name": folder.name, "created": manifest["created"], "files": len(manifest["files"]),
                    "bytes": size, "images": manifest["images"], "models": manifest["models"]})  # fmt: skip
    return sorted(out, key=lambda b: (b["created"], b["name"]), reverse=True)
