"""``local_folder``: image files in a folder on the server, below the configured import roots."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import msgspec

from furrsight.scraping.contract import Candidate, ScrapeContext, Scraper

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".avif"}


class LocalFolderParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    path: str
    group_by_folder: bool = True


class LocalFolder(Scraper):
    name = "local_folder"
    description = "Image files in a server folder below the import roots; each sub-folder is one group."
    Params = LocalFolderParams
    rules = "Files on this server below the import roots; no network request."

    async def scrape(self, params: LocalFolderParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        roots = [Path(r).expanduser().resolve() for r in ctx.import_roots]
        root = Path(params.path).expanduser().resolve()
        if not any(root == r or root.is_relative_to(r) for r in roots) or not root.is_dir():
            raise ValueError(f"{params.path!r} is not a folder below the import roots")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.suffix.lower() not in EXTENSIONS or not any(path.resolve().is_relative_to(r) for r in roots):
                    continue
                data = await anyio.Path(path).read_bytes()
                yield Candidate(
                    data=data, file_name=str(path), title=path.stem,
                    group_key=f"folder:{dirpath}" if params.group_by_folder else None,
                )  # fmt: skip
