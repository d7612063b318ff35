"""``url_list``: image URLs pasted in the form, or a text, CSV, JSONL or Parquet file of them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec

from furrsight.scraping.contract import Candidate, ScrapeContext, Scraper


class UrlListParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    urls: str = msgspec.field(default="", name="urls")
    file: str = ""
    url_column: str = "url"
    caption_column: str = "caption"
    page_url_column: str = "page_url"
    license_column: str = "license"


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    elif suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)
    elif suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
    else:
        yield from _text_rows(path.read_text(encoding="utf-8"))


def _text_rows(text: str) -> Iterator[dict[str, Any]]:
    for line in io.StringIO(text):
        line = line.strip()
        if line and not line.startswith("#"):
            yield {"url": line}


def _inside(path: Path, roots: tuple[str, ...]) -> bool:
    real = path.resolve()
    return any(real.is_relative_to(Path(r).expanduser().resolve()) for r in roots)


class UrlList(Scraper):
    name = "url_list"
    description = "Fetch a list of image URLs: pasted, or a .txt/.csv/.jsonl/.parquet file (img2dataset-style)."
    Params = UrlListParams
    rules = "Image downloads from arbitrary hosts: each follows its host's robots.txt."

    async def scrape(self, params: UrlListParams, ctx: ScrapeContext) -> AsyncIterator[Candidate]:
        rows: Iterator[dict[str, Any]] = _text_rows(params.urls)
        url_col = "url"
        if params.file:
            path = Path(params.file)
            if not _inside(path, ctx.import_roots) or not path.is_file():
                raise ValueError(f"file {params.file!r} is not a file below the import roots")
            rows, url_col = _rows(path), params.url_column
        for row in rows:
            url = str(row.get(url_col) or "").strip()
            if not url:
                continue
            yield Candidate(
                url=url,
                alt_text=_opt(row.get(params.caption_column)),
                page_url=_opt(row.get(params.page_url_column)),
                license=_opt(row.get(params.license_column)),
            )


def _opt(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
