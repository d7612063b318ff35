"""Shared web helpers: one handler answers a full page or, for HTMX, just the fragment."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def page(request: Request[Any, Any, Any], template: str, fragment: str | None = None, **context: Any) -> Template:
    """Render ``template`` (a full page), or ``fragment`` (a ``_partials/`` template) for HTMX."""
    name = fragment if fragment and is_htmx(request) else template
    return Template(template_name=name, context=context)
