"""Turn a submitted HTML form into plugin params, guided by the params' JSON schema."""

from __future__ import annotations

import uuid
from typing import Any

import aiofiles
from litestar.datastructures import UploadFile

from furrsight.settings import Settings


def _one(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an ``anyOf`` (``str | None``)."""
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            return dict(branch)
    return schema


def field_kind(schema: dict[str, Any]) -> str:
    """text, number, integer, checkbox, lines (a list, one item per line) or file."""
    kind = _one(schema).get("type", "string")
    return {"boolean": "checkbox", "array": "lines", "integer": "integer", "number": "number"}.get(kind, "text")


async def stage_upload(settings: Settings, upload: UploadFile) -> str:
    folder = settings.data_path / "incoming" / f"scrape-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    safe = "".join(ch for ch in (upload.filename or "list.txt") if ch.isalnum() or ch in "._-") or "list.txt"
    path = folder / safe
    async with aiofiles.open(path, "wb") as handle:
        await handle.write(await upload.read())
    return str(path)


async def form_params(settings: Settings, schema: dict[str, Any], form: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        value = form.get(name)
        kind = field_kind(prop)
        if name == "file" and isinstance(value, UploadFile):
            if value.filename:
                params[name] = await stage_upload(settings, value)
            continue
        if kind == "checkbox":
            params[name] = value in ("on", "true", "1", True)
        elif value is None or value == "":
            continue
        elif kind == "lines":
            params[name] = [line.strip() for line in str(value).splitlines() if line.strip()]
        else:
            params[name] = str(value)  # numbers are converted (and checked) by the Params struct
    return params
