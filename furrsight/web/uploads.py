"""Multipart uploads streamed to disk as they arrive, with the byte cap enforced while reading.

``request.form()`` would take in the whole body before a handler could count it (a chunked
upload has no ``Content-Length`` to check first). Here each file part goes straight to its own
file and the request stops at the first byte over the cap. The parser is the ``multipart``
package's push parser, the same one Litestar's own form parsing uses.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiofiles
from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser  # type: ignore[import-untyped]

COPY_CHUNK = 1024 * 1024


class UploadTooLarge(ClientException):
    status_code = 413


def _too_large(limit: int, length: int | None = None) -> UploadTooLarge:
    size = f"{length} bytes" if length is not None else f"over {limit} bytes"
    return UploadTooLarge(f"the upload is {size}, over the limit of {limit} bytes")


async def save_files(
    request: Request[Any, Any, Any], field: str, folder: Path, max_bytes: int
) -> list[tuple[Path, str]]:
    """Write every file of multipart ``field`` to ``folder/000000``, ``000001``, …; returns
    (path, original name) pairs. Over ``max_bytes`` (the whole body): 413, and ``folder`` is
    removed with whatever was written; so on any other error."""
    folder.mkdir(parents=True)
    try:
        return await _save(request, field, folder, max_bytes)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


async def _save(request: Request[Any, Any, Any], field: str, folder: Path, max_bytes: int) -> list[tuple[Path, str]]:
    media_type, options = request.content_type
    if media_type != "multipart/form-data" or not options.get("boundary"):
        raise ClientException(f"send the files as multipart/form-data, field {field!r}")
    length = request.content_length
    if length is not None and length > max_bytes:
        raise _too_large(max_bytes, length)
    form = value_or_default(ScopeState.from_scope(request.scope).form, None)
    if form is not None:  # already parsed (the CSRF check reads a plain form's token field)
        return await _copy_parsed(form, field, folder, max_bytes)
    saved: list[tuple[Path, str]] = []
    received = 0
    handle: Any = None
    try:
        limit = request.app.multipart_form_part_limit
        with PushMultipartParser(options["boundary"].encode(), max_segment_count=limit) as parser:
            stream = request.stream()
            while not parser.closed:
                chunk = await anext(stream, b"")
                received += len(chunk)
                if received > max_bytes:
                    raise _too_large(max_bytes)
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        if part.name == field and part.filename:  # no name: no file chosen
                            path = folder / f"{len(saved):06d}"
                            saved.append((path, part.filename))
                            handle = await aiofiles.open(path, "wb")
                    elif part:
                        if handle is not None:
                            await handle.write(part)
                    elif handle is not None:  # the end of a part
                        await handle.close()
                        handle = None
    except ParserLimitReached as exc:
        raise ClientException(f"too many parts in the form: {exc}") from None
    except ParserError as exc:
        raise ClientException(f"not a valid multipart/form-data body: {exc}") from None
    finally:
        if handle is not None:
            await handle.close()
    return saved


async def _copy_parsed(form: dict[str, Any], field: str, folder: Path, max_bytes: int) -> list[tuple[Path, str]]:
    values = form.get(field, [])
    uploads = [v for v in (values if isinstance(values, list) else [values]) if isinstance(v, UploadFile)]
    saved: list[tuple[Path, str]] = []
    total = 0
    for upload in uploads:
        path = folder / f"{len(saved):06d}"
        saved.append((path, upload.filename or path.name))
        async with aiofiles.open(path, "wb") as handle:
            while chunk := await upload.read(COPY_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise _too_large(max_bytes)
                await handle.write(chunk)
    return saved
