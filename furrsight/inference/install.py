"""Installed models under ``<data>/models/<name>/``: pull (resumable download), import (files
brought in by hand), verify (re-hash), remove, list.

Each installed model's folder holds its files, ``manifest.toml`` (the manifest it came from) and
``installed.json`` (SHA-256 and size of every file as installed). A download goes to
``<file>.part`` first and resumes from there with an HTTP Range request; its SHA-256 is computed
as the bytes arrive, and only a complete file whose hash is the pinned one is renamed into place.
A manifest whose downloadable files are not pinned (revision + SHA-256) is refused unless the
caller allows it, and then the hash it got is written into the installed manifest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import tomli_w

from furrsight.inference.manifest import CATALOGUE, Manifest, ModelError, ModelFile, catalogue, load_manifest

Progress = Callable[[int, int | None], None]  # (bytes done, bytes total or None)
CHUNK = 1024 * 1024


class ModelStatus(msgspec.Struct, kw_only=True):
    name: str
    task: str
    runtime: str
    status: str  # installed, bundled, missing
    license: str
    source: str
    description: str
    size: int | None
    pinned: bool = True  # every downloadable file names a revision and a SHA-256
    commercial_use: bool = True  # false: the licence forbids commercial use (said before a pull)
    files: dict[str, str] = {}  # file -> sha256, as installed


def noncommercial_notice(manifest: Manifest) -> str:
    return f"{manifest.name} is licensed {manifest.license}, which does not allow commercial use"


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """The SHA-256 of a file, read in chunks; ``progress(n)`` after each chunk of n bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


class ModelStore:
    """The installed models of one data directory, and the catalogue they come from."""

    def __init__(self, root: Path, catalogue_dir: Path = CATALOGUE) -> None:
        self.root = root
        self.catalogue_dir = catalogue_dir

    # -- where things are ---------------------------------------------------------------------
    def folder(self, name: str) -> Path:
        return self.root / name

    def manifest(self, name: str) -> Manifest:
        """The installed manifest, else the catalogue's; ModelError when neither knows ``name``."""
        installed = self.folder(name) / "manifest.toml"
        if installed.exists():
            return load_manifest(installed)
        known = catalogue(self.catalogue_dir)
        if name not in known:
            raise ModelError(f"unknown model {name!r}: `furrsight models list` shows the known ones")
        return known[name]

    def file_path(self, manifest: Manifest, entry: ModelFile) -> Path:
        if manifest.bundled and not (self.folder(manifest.name) / entry.path).exists():
            return self.catalogue_dir / manifest.name / entry.path
        return self.folder(manifest.name) / entry.path

    def status(self, manifest: Manifest) -> str:
        if (self.folder(manifest.name) / "installed.json").exists():
            return "installed"
        if manifest.bundled and all((self.catalogue_dir / manifest.name / f.path).exists() for f in manifest.files):
            return "bundled"
        return "missing"

    def is_ready(self, name: str) -> bool:
        try:
            return self.status(self.manifest(name)) != "missing"
        except ModelError:
            return False

    def require(self, name: str) -> Manifest:
        """The manifest of an installed (or bundled) model; ModelError saying how to get it."""
        manifest = self.manifest(name)
        if self.status(manifest) == "missing":
            raise ModelError(f"model {name!r} is not installed: `furrsight models pull {name}` (or `import`)")
        return manifest

    def records(self, name: str) -> dict[str, str]:
        path = self.folder(name) / "installed.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def statuses(self) -> list[ModelStatus]:
        known = catalogue(self.catalogue_dir)
        if self.root.is_dir():  # imported models that the catalogue does not know
            for folder in sorted(self.root.iterdir()):
                if folder.name not in known and (folder / "manifest.toml").exists():
                    known[folder.name] = load_manifest(folder / "manifest.toml")
        out = []
        for m in known.values():
            sizes = [f.size for f in m.files]
            out.append(ModelStatus(
                name=m.name, task=m.task, runtime=m.runtime, status=self.status(m), license=m.license,
                commercial_use=m.commercial_use,
                source=m.source, description=m.description, size=sum(s for s in sizes if s) if all(sizes) else None,
                pinned=not m.unpinned(), files=self.records(m.name),
            ))  # fmt: skip
        return out

    # -- installing ---------------------------------------------------------------------------
    def _finish(self, manifest: Manifest, hashes: dict[str, str]) -> None:
        folder = self.folder(manifest.name)
        (folder / "manifest.toml").write_bytes(manifest_toml(manifest))
        (folder / "installed.json").write_text(json.dumps(hashes, indent=1, sort_keys=True))

    @staticmethod
    def _check(entry: ModelFile, path: Path) -> str:
        digest = sha256_file(path)
        if entry.sha256 and digest != entry.sha256:
            path.unlink(missing_ok=True)
            raise ModelError(f"{entry.path}: SHA-256 {digest} does not match the pinned {entry.sha256}; file removed")
        return digest

    def pull(
        self,
        name: str,
        progress: Progress | None = None,
        client: httpx.Client | None = None,
        allow_unpinned: bool = False,
        accept_licence: bool = False,
    ) -> Manifest:
        """Download every file of ``name`` that is not already in place, resuming partial files.

        Every downloadable file must be pinned (revision + SHA-256): bytes with another hash are
        refused and nothing of them is installed. ``allow_unpinned`` accepts files that are not
        pinned and records the hash they arrived with in the installed manifest, so that
        ``verify`` and later pulls hold them to it."""
        manifest = self.manifest(name)
        if not manifest.commercial_use and not accept_licence:
            raise ModelError(noncommercial_notice(manifest) + ": pull it only for non-commercial use, and say so "
                             "(--accept-licence, or accept_licence in the request)")  # fmt: skip
        unpinned = manifest.unpinned()
        if unpinned and not allow_unpinned:
            files = ", ".join(f.path for f in unpinned)
            raise ModelError(
                f"{name}: {files} not pinned to a revision and a SHA-256, so a changed upstream file could not be "
                "told apart: add `revision` and `sha256` to the manifest, or pull with --allow-unpinned "
                "(records the hash it gets)"
            )
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        total = sum(f.size or 0 for f in manifest.files) or None
        done = 0
        hashes: dict[str, str] = {}
        own = client is None
        http = client or httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, read=120.0))
        try:
            for entry in manifest.files:
                dest = folder / entry.path
                known = self.records(name).get(entry.path)
                if dest.exists() and known and (entry.sha256 in (None, known)):
                    hashes[entry.path] = known
                    done += dest.stat().st_size
                    continue
                if not entry.url:
                    raise ModelError(f"{name}: file {entry.path} has no URL: install it with `furrsight models import`")
                try:
                    done, hashes[entry.path] = _download(http, entry, dest, done, total, progress)
                except httpx.HTTPError as exc:
                    raise ModelError(f"cannot download {entry.url}: {exc}; `pull` again resumes") from exc
        finally:
            if own:
                http.close()
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        self._finish(_pinned_by_download(manifest, hashes), hashes)
        return manifest

    def import_files(self, name: str, source: Path) -> Manifest:
        """Install files carried in by hand: ``source`` is a folder holding the manifest's files
        (and, for a model the catalogue does not know, its ``manifest.toml``), or the one file."""
        if not source.exists():
            raise ModelError(f"{source} does not exist")
        if source.is_dir() and (source / "manifest.toml").exists():
            manifest = load_manifest(source / "manifest.toml")
            if manifest.name != name:
                raise ModelError(f"{source}/manifest.toml describes {manifest.name!r}, not {name!r}")
        else:
            manifest = self.manifest(name)
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        hashes: dict[str, str] = {}
        for entry in manifest.files:
            origin = source / entry.path if source.is_dir() else source
            if source.is_file() and len(manifest.files) > 1:
                raise ModelError(f"{name} has {len(manifest.files)} files: give the folder that holds them")
            if not origin.is_file():
                raise ModelError(f"{origin} is missing: {name} needs {', '.join(f.path for f in manifest.files)}")
            temp = folder / (entry.path + ".part")
            shutil.copyfile(origin, temp)
            hashes[entry.path] = self._check(entry, temp)
            temp.replace(folder / entry.path)
        self._finish(manifest, hashes)
        return manifest

    def verify(self, name: str, progress: Progress | None = None) -> list[str]:
        """Re-hash every file; returns the problems found (empty: all good). Multi-gigabyte files
        take minutes: run it in a job; ``progress(bytes done, bytes total)`` follows the reading."""
        manifest = self.require(name)
        recorded = self.records(name)
        problems = []
        paths = [(entry, self.file_path(manifest, entry)) for entry in manifest.files]
        total = sum(p.stat().st_size for _, p in paths if p.is_file())
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        for entry, path in paths:
            if not path.is_file():
                problems.append(f"{entry.path}: missing")
                continue
            digest = sha256_file(path, advance)
            expected = entry.sha256 or recorded.get(entry.path)
            if expected and digest != expected:
                problems.append(f"{entry.path}: SHA-256 {digest} differs from {expected}")
        return problems

    def remove(self, name: str) -> None:
        manifest = self.manifest(name)
        folder = self.folder(name)
        if not folder.exists():
            extra = " (it is bundled with the appliance)" if manifest.bundled else ""
            raise ModelError(f"model {name!r} is not installed{extra}")
        shutil.rmtree(folder)


def _download(
    http: httpx.Client, entry: ModelFile, dest: Path, done: int, total: int | None, progress: Progress | None
) -> tuple[int, str]:
    """Fetch ``entry`` into ``<dest>.part`` (resuming it with a Range request), hashing as the bytes
    arrive; only a complete file whose SHA-256 is the pinned one is renamed to ``dest``.
    Returns the bytes done so far and the file's SHA-256."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    digest = _hash_of(part) if have else hashlib.sha256()
    headers = {"Range": f"bytes={have}-"} if have else {}
    assert entry.url is not None
    with http.stream("GET", entry.url, headers=headers) as response:
        if response.status_code == 416:  # already complete
            pass
        elif response.status_code not in (200, 206):
            raise ModelError(f"{entry.url}: HTTP {response.status_code}")
        else:
            if response.status_code == 200 and have:
                have, digest = 0, hashlib.sha256()  # the server ignored the range: start again
            done += have
            with part.open("ab" if have else "wb") as handle:
                for block in response.iter_bytes(CHUNK):
                    handle.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
    size = part.stat().st_size
    if entry.size is not None and size < entry.size:
        raise ModelError(f"{entry.path}: got {size} bytes, expected {entry.size}; pull again to resume")
    got = digest.hexdigest()
    if entry.sha256 and got != entry.sha256:
        part.unlink(missing_ok=True)
        raise ModelError(
            f"{entry.path}: the server sent bytes with SHA-256 {got}, not the pinned {entry.sha256} "
            f"(revision {entry.revision}): refused, nothing installed"
        )
    if entry.size is not None and size != entry.size:
        part.unlink(missing_ok=True)
        raise ModelError(f"{entry.path}: got {size} bytes, expected {entry.size}: refused, nothing installed")
    part.replace(dest)
    return done, got


def _hash_of(path: Path) -> Any:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest


def _pinned_by_download(manifest: Manifest, hashes: dict[str, str]) -> Manifest:
    """The manifest to keep beside the installed files: unpinned files get the hash they arrived with."""
    files = [f if f.sha256 or f.path not in hashes else msgspec.structs.replace(f, sha256=hashes[f.path])
             for f in manifest.files]  # fmt: skip
    return msgspec.structs.replace(manifest, files=files)


def manifest_toml(manifest: Manifest) -> bytes:
    """The installed copy of a manifest, as TOML (tomli-w; TOML has no null: unset fields are left out)."""
    return tomli_w.dumps(_without_none(msgspec.to_builtins(manifest))).encode()


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value
