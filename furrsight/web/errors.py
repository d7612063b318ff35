"""Errors as JSON for the API and as a readable page for the browser.

These helpers know no feature: a feature whose errors carry their own HTTP status maps them with
``status_error_handler`` (jobs do), or answers with ``error_response``.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    if _wants_html(request):
        name = "_partials/error.html" if request.headers.get("hx-request") == "true" else "error.html"
        context = {"status": status, "message": message}
        return Template(template_name=name, context=context, status_code=status, headers=headers)  # type: ignore[return-value]
    return Response(
        {"error": message, "status": status, **(extra or {})}, status_code=status, media_type=MediaType.JSON,
        headers=headers,
    )  # fmt: skip


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    message, extra = str(exc.detail), None
    if isinstance(exc, ValidationException) and exc.extra:
        extra = {"detail": exc.extra}
        message += "".join(_why(item) for item in (exc.extra if isinstance(exc.extra, list) else []))
    return error_response(request, exc.status_code, message, extra, dict(exc.headers or {}))  # Allow, Retry-After…


def _why(item: Any) -> str:
    """``; image_id: Expected `int` <= 9007199254740991`` from one of Litestar's validation details."""
    if isinstance(item, dict) and item.get("message"):
        return f"; {item['key']}: {item['message']}" if item.get("key") else f"; {item['message']}"
    return ""


def status_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """For an exception with a ``status`` attribute: its message, with that status."""
    return error_response(request, int(getattr(exc, "status", 400)), str(exc))


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    request.logger.exception("unhandled error on %s", request.url.path)
    return error_response(request, HTTP_500_INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
