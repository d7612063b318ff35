"""Sign-in pages: login and logout, first-run setup, OpenID Connect login and callback.

The users, tokens and audit pages and the auth API are in ``admin_routes``; ``router`` has both.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from furrsight.auth import admin_routes, audit, service
from furrsight.auth.firstrun import SetupError, create_first_admin
from furrsight.auth.guards import redirect, safe_next
from furrsight.auth.oidc import OIDCError, Pending
from furrsight.auth.oidc_accounts import account_for
from furrsight.auth.passwords import PasswordError
from furrsight.auth.roles import CurrentUser
from furrsight.auth.sessions import COOKIE
from furrsight.auth.state import CSRF_COOKIE, AuthState
from furrsight.web.routing import feature_router

OIDC_COOKIE = "furrsight_oidc"
SETUP_ACCOUNT = " setup"  # the throttle's account name for wrong setup codes (no user name has a space)
PUBLIC = {"public": True}


def _state(request: Request[Any, Any, Any]) -> AuthState:
    return request.app.state.auth  # type: ignore[no-any-return]


def address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Template:
    state = _state(request)
    headers = context.pop("headers", None)
    context.setdefault("next", "/")
    return Template(
        template_name="auth/login.html",
        context={
            "local_login": state.settings.auth.local_login,
            "oidc_enabled": state.oidc.enabled,
            "oidc_label": state.settings.auth.oidc_button_label,
            **context,
        },
        status_code=status,
        headers=headers,
    )


async def sign_in(
    request: Request[Any, Any, Any], user: CurrentUser, method: str, next_url: str, **detail: Any
) -> Response[Any]:
    """Start a server-side session for ``user`` and send the browser on to ``next_url``; ``detail`` goes
    into the audit entry."""
    state = _state(request)
    old = request.cookies.get(COOKIE)
    if old:
        await state.sessions.delete(old)
    sid = await state.sessions.create(user.id)
    await service.mark_login(user.id)
    await state.throttle.succeeded(user.username)
    await audit.record("login", actor=user.username, address=address(request), method=method, **detail)
    response = redirect(request, safe_next(next_url))
    response.set_cookie(
        COOKIE, sid, httponly=True, samesite="lax", path="/", max_age=state.settings.auth.session_absolute_hours * 3600
    )
    response.delete_cookie(CSRF_COOKIE, path="/")  # a new CSRF token with the new session (the next page sets it)
    return response


@get("/login", opt=PUBLIC)
async def login_page(request: Request[Any, Any, Any], next: FromQuery[str] = "/") -> Template:
    return _login_page(request, next=safe_next(next))


@post("/login", opt=PUBLIC)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    state = _state(request)
    form = await request.form()
    username, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or "/"))
    if not state.settings.auth.local_login:
        return _login_page(request, 403, next=next_url, error="password sign-in is switched off: use single sign-on")
    wait = await state.throttle.retry_after(address(request), username)
    if wait:
        await audit.record("login.throttled", target=username[:128], address=address(request))
        return _login_page(
            request, 429, next=next_url, username=username, headers={"Retry-After": str(wait)},
            error=f"too many failed sign-ins: try again in {wait} seconds",
        )  # fmt: skip
    user = await service.check_password(username, password) if username and password else None
    if user is None:
        await state.throttle.failed(address(request), username)
        await audit.record("login.failed", target=username[:128], address=address(request), method="password")
        return _login_page(request, 401, next=next_url, username=username, error="wrong user name or password")
    return await sign_in(request, user, "password", next_url)


@post("/logout", opt={"role": "viewer"})
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    sid = request.cookies.get(COOKIE)
    if sid:
        await _state(request).sessions.delete(sid)
    await audit.record("logout", actor=request.user.username, address=address(request))
    response = redirect(request, "/login")
    response.delete_cookie(COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


# -- first run ---------------------------------------------------------------------------------
@get("/setup", opt=PUBLIC)
async def setup_page(request: Request[Any, Any, Any]) -> Response[Any]:
    if await _state(request).has_users():
        return redirect(request, "/login")
    return Template(template_name="auth/setup.html", context={})


@post("/setup", opt=PUBLIC)
async def setup(request: Request[Any, Any, Any]) -> Response[Any]:
    state = _state(request)
    form = await request.form()
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    wait = await state.throttle.retry_after(address(request), SETUP_ACCOUNT)
    if wait:
        context = {"error": f"too many wrong setup codes: try again in {wait} seconds", "username": username}
        return Template(
            template_name="auth/setup.html", context=context, status_code=429, headers={"Retry-After": str(wait)}
        )
    try:
        if password != str(form.get("password2") or ""):
            raise SetupError("the two passwords differ")
        await create_first_admin(state.settings, str(form.get("code") or ""), username, password, address(request))
    except SetupError as exc:
        if "setup code" in str(exc):
            await state.throttle.failed(address(request), SETUP_ACCOUNT)
        context = {"error": str(exc), "username": username}
        return Template(template_name="auth/setup.html", context=context, status_code=400)
    except (PasswordError, service.AccountError) as exc:
        return Template(
            template_name="auth/setup.html", context={"error": str(exc), "username": username}, status_code=400
        )
    user = await service.check_password(username, password)
    assert user is not None
    return await sign_in(request, user, "setup", "/")


# -- OpenID Connect ----------------------------------------------------------------------------
def _redirect_uri(request: Request[Any, Any, Any]) -> str:
    base = _state(request).settings.auth.oidc_redirect_base or str(request.base_url)
    return base.rstrip("/") + "/auth/oidc/callback"


@get("/auth/oidc/login", opt=PUBLIC)
async def oidc_login(request: Request[Any, Any, Any], next: FromQuery[str] = "/") -> Response[Any]:
    state = _state(request)
    if not state.oidc.enabled:
        raise NotFoundException("single sign-on is not configured")
    try:
        url, pending = await state.oidc.begin(_redirect_uri(request), safe_next(next))
    except OIDCError as exc:
        return _login_page(request, 502, error=str(exc))
    await state.pending.set(pending.state, msgspec.json.encode(pending), expires_in=600)
    response: Response[Any] = Response(None, status_code=302, headers={"Location": url})
    response.set_cookie(OIDC_COOKIE, pending.state, httponly=True, samesite="lax", path="/auth/oidc", max_age=600)
    return response


async def _take_pending(request: Request[Any, Any, Any], state_param: str | None) -> Pending:
    expected = request.cookies.get(OIDC_COOKIE)
    if not state_param or not expected or not hmac.compare_digest(state_param, expected):
        raise OIDCError("sign-in failed: the state does not match the sign-in this browser started (start again)")
    store = _state(request).pending
    raw = await store.get(state_param)
    await store.delete(state_param)
    if raw is None:
        raise OIDCError("sign-in failed: this sign-in expired or was already used (start again)")
    return msgspec.json.decode(raw, type=Pending)


@get("/auth/oidc/callback", opt=PUBLIC)
async def oidc_callback(
    request: Request[Any, Any, Any],
    code: FromQuery[str | None] = None,
    state_param: Annotated[str | None, QueryParameter(name="state")] = None,
    error: FromQuery[str | None] = None,
) -> Response[Any]:
    state = _state(request)
    if not state.oidc.enabled:
        raise NotFoundException("single sign-on is not configured")
    try:
        if error:
            raise OIDCError(f"the identity provider refused the sign-in: {error}")
        pending = await _take_pending(request, state_param)
        if not code:
            raise OIDCError("sign-in failed: the identity provider sent no code")
        claims = await state.oidc.finish(code, pending, _redirect_uri(request))
        user = await account_for(state.oidc, claims, address(request))
    except OIDCError as exc:
        await audit.record("login.failed", address=address(request), method="oidc", reason=str(exc)[:200])
        response: Response[Any] = _login_page(request, 400, error=str(exc))
        response.delete_cookie(OIDC_COOKIE, path="/auth/oidc")
        return response
    response = await sign_in(request, user, "oidc", pending.next, email=claims.get("email"))
    response.delete_cookie(OIDC_COOKIE, path="/auth/oidc")
    return response


router = feature_router(
    "auth",
    api=admin_routes.API,
    pages=[login_page, login, logout, setup_page, setup, oidc_login, oidc_callback, *admin_routes.PAGES],
)
