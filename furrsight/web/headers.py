"""Protective headers on every answer: pages load scripts and styles from this origin only (no
inline script or style, no eval), are never framed, and send the referrer only to this origin.

Set in a ``before_send`` hook, which sees every response the app sends: pages, the API, static
files, errors and 404s of unknown paths alike. A handler that sets one of these keeps its own.
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate it
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}


async def add_security_headers(message: Message, scope: Any) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value
    if scope.get("method") == "OPTIONS" and "allow" in headers:
        headers["allow"] = _allowed_methods(scope) or headers["allow"]


def _allowed_methods(scope: Any) -> str | None:
    """Every method of the path, for OPTIONS: Litestar 2 lists only those of the first handler
    registered on a path (litestar issue 4169, fixed in 3.0)."""
    template = scope.get("path_template")
    routes = getattr(scope.get("litestar_app"), "routes", [])
    methods = {m for r in routes if getattr(r, "path_format", None) == template for m in getattr(r, "methods", ())}
    return ", ".join(sorted(methods)) if template and methods else None
