"""One feature's routes: its JSON API, which the OpenAPI document describes, and its HTML pages,
which it leaves out (``/schema/openapi.json`` covers the JSON API only, so a generated client works)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Router


def feature_router(tag: str, api: Sequence[Any], pages: Sequence[Any] = ()) -> Router:
    page_router = Router(path="/", route_handlers=list(pages), include_in_schema=False)
    return Router(path="/", route_handlers=[*api, page_router], tags=[tag])
