"""The app-level guard that locks every route, and how a refusal is answered.

A handler's ``opt`` decides: ``public`` needs no user; ``role`` names the least role;
otherwise GET/HEAD need a viewer and every other method a curator. ``allow_from`` (CIDRs) lets
a client from those networks in without a user (``/metrics`` for a Prometheus server);
``machine`` answers a refusal with 401 in words instead of a redirect to the sign-in page.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from furrsight.auth.firstrun import SetupError
from furrsight.auth.passwords import PasswordError
from furrsight.auth.service import AccountError
from furrsight.web.errors import error_response, http_exception_handler

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class SetupRequired(NotAuthorizedException):
    """No account exists yet."""


def needed_role(handler: BaseRouteHandler, method: str) -> str | None:
    if handler.opt.get("public"):
        return None
    return str(handler.opt.get("role") or ("viewer" if method in SAFE_METHODS else "curator"))


def address_in(host: str | None, networks: tuple[str, ...]) -> bool:
    """Whether the client address ``host`` lies in one of ``networks`` (CIDRs); a host that is
    not an IP address (a test client's name, a Unix socket) is in none."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


async def role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    method = str(connection.scope.get("method", "GET"))
    needed = needed_role(handler, method)
    if needed is None:
        return
    allowed = handler.opt.get("allow_from")
    if allowed and address_in(connection.client.host if connection.client else None, allowed):
        return
    if not await connection.app.state.auth.has_users():
        raise SetupRequired("no account exists yet: open /setup in a browser to create the first admin")
    user = connection.scope.get("user")
    if user is None:
        raise NotAuthorizedException("sign in first: a session cookie or an 'Authorization: Bearer' token is needed")
    if not user.can(needed):
        raise PermissionDeniedException(
            f"{user.username} is a {user.role}: {method} {connection.url.path} needs the {needed} role"
        )


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no //host) may be a redirect target after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def redirect(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    """303 for a browser; for HTMX a 200 with ``HX-Redirect`` (htmx does not follow a 3xx for us)."""
    if request.headers.get("hx-request") == "true":
        return Response(None, status_code=200, headers={"HX-Redirect": url})
    return Response(None, status_code=303, headers={"Location": url})


def not_authorized_handler(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    handler = request.scope.get("route_handler")
    if request.url.path.startswith("/api/") or (handler is not None and handler.opt.get("machine")):
        response = http_exception_handler(request, exc)
        response.headers["WWW-Authenticate"] = 'Bearer realm="furrsight"'
        return response
    if isinstance(exc, SetupRequired):
        return redirect(request, "/setup")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, "/login?next=" + quote(here, safe=""))


def bad_input_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return error_response(request, 400, str(exc))


AUTH_EXCEPTION_HANDLERS: dict[Any, Any] = {
    NotAuthorizedException: not_authorized_handler,
    AccountError: bad_input_handler,
    PasswordError: bad_input_handler,
    SetupError: bad_input_handler,
}
