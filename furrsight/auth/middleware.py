"""ASGI middleware: who is asking (session cookie or Bearer token), CSRF for browsers, and the
Secure flag on cookies when the request came over HTTPS (directly or through a trusted proxy)."""

from __future__ import annotations

from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from furrsight.auth import service
from furrsight.auth.roles import CurrentUser
from furrsight.auth.sessions import COOKIE


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return None


async def resolve_user(scope: Scope) -> CurrentUser | None:
    """The user of a Bearer token when one is sent (the cookie is then ignored), else of the
    session cookie; None when neither is valid."""
    token = bearer_token(scope)
    if token is not None:
        return await service.user_for_token(token) if token else None
    connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
    sid = connection.cookies.get(COOKIE)
    if not sid:
        return None
    sessions = scope["litestar_app"].state.auth.sessions
    data = await sessions.load(sid)
    if data is None:
        return None
    user = await service.active_user(data.user_id, "session")
    if user is None:  # disabled (or removed) since sign-in: end the session for good
        await sessions.delete(sid)
    return user


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            is_static = scope.get("path", "").startswith("/static/")
            user = None if is_static else await resolve_user(scope)
            scope["user"] = user
            scope["auth"] = user.via if user else None
        await self.app(scope, receive, send)


class CSRFUnlessBearer:
    """Litestar's CSRF check for every state-changing request, except those that carry an
    ``Authorization: Bearer`` header: those are authenticated by the token alone (the cookie is
    ignored), and a browser cannot add that header to a cross-site request. An API request with
    neither a token nor a session cookie has no credentials to abuse: it is let through to be
    answered 401 (sign in first) rather than 403 (CSRF)."""

    def __init__(self, app: ASGIApp, config: CSRFConfig) -> None:
        self.app = app
        self.csrf = CSRFMiddleware(app, config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (bearer_token(scope) is not None or _anonymous_api(scope)):
            await self.app(scope, receive, send)
        else:
            await self.csrf(scope, receive, send)


def _anonymous_api(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith("/api/") and scope.get("user") is None


class SecureCookies:
    """Add ``Secure`` to every cookie set on an HTTPS request (uvicorn's proxy_headers turns a
    trusted proxy's X-Forwarded-Proto into the scheme)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if name.lower() == b"set-cookie" and b"secure" not in value.lower():
                        value = value + b"; Secure"
                    headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_secure)
