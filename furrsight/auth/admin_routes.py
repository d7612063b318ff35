"""Users (admin), my API tokens, the audit log (admin): pages and the JSON API."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from furrsight.auth import audit, service
from furrsight.auth.passwords import PasswordError
from furrsight.auth.roles import ROLES
from furrsight.auth.schemas import AuditPage, NewToken, TokenOut, TokenRequest, UserOut
from furrsight.web.api import Cursor, Limit, RowId, answers
from furrsight.web.pages import page

ADMIN = {"role": "admin"}
ANY_USER = {"role": "viewer"}  # every signed-in user may manage their own tokens


class UserChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: Annotated[str | None, msgspec.Meta(extra_json_schema={"extra": {"enum": [*ROLES, None]}})] = None
    active: bool | None = None


class MeOut(msgspec.Struct, kw_only=True):
    username: str
    role: str
    via: str


def _me(request: Request[Any, Any, Any]) -> str:
    return str(request.user.username)


async def _change_user(request: Request[Any, Any, Any], username: str, change: UserChange) -> UserOut:
    if username == _me(request) and (change.active is False or (change.role and change.role != request.user.role)):
        raise ClientException("you cannot disable your own account or change your own role: ask another admin")
    user = await service.get_user(username)
    if change.role is not None and change.role != user.role:
        user = await service.set_role(username, change.role, actor=_me(request))
    if change.active is not None and change.active != user.active:
        user = await service.set_active(username, change.active, actor=_me(request))
    return user


async def _revoke(request: Request[Any, Any, Any], token_id: int) -> TokenOut:
    owner = None if request.user.can("admin") else _me(request)
    try:
        return await service.revoke_token(token_id, actor=_me(request), owner=owner)
    except service.AccountError as exc:
        raise NotFoundException(str(exc)) from exc


# -- API ---------------------------------------------------------------------------------------
@get("/api/v1/me", opt=ANY_USER, responses=answers())
async def api_me(request: Request[Any, Any, Any]) -> MeOut:
    user = request.user
    return MeOut(username=user.username, role=user.role, via=user.via)


@get("/api/v1/users", opt=ADMIN, responses=answers())
async def api_users() -> list[UserOut]:
    return await service.list_users()


@patch("/api/v1/users/{username:str}", opt=ADMIN, responses=answers())
async def api_change_user(
    request: Request[Any, Any, Any], username: FromPath[str], data: Annotated[UserChange, Body()]
) -> UserOut:
    """Change a user's role and/or enable or disable the account."""
    return await _change_user(request, username, data)


@get("/api/v1/tokens", opt=ANY_USER, responses=answers())
async def api_tokens(request: Request[Any, Any, Any]) -> list[TokenOut]:
    """Your API tokens (never the token itself: it is shown once, at creation)."""
    return await service.list_tokens(_me(request))


@post("/api/v1/tokens", opt=ANY_USER, status_code=201, responses=answers())
async def api_create_token(request: Request[Any, Any, Any], data: Annotated[TokenRequest, Body()]) -> NewToken:
    return await service.create_token(_me(request), data.label, actor=_me(request))


@delete("/api/v1/tokens/{token_id:int}", opt=ANY_USER, status_code=200, responses=answers(404))
async def api_revoke_token(request: Request[Any, Any, Any], token_id: RowId) -> TokenOut:
    """Revoke one of your tokens (admins: any token)."""
    return await _revoke(request, token_id)


@get("/api/v1/audit", opt=ADMIN, responses=answers())
async def api_audit(
    action: FromQuery[str | None] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> AuditPage:
    return await audit.list_entries(limit=limit, before=cursor, action=action)


# -- pages -------------------------------------------------------------------------------------
async def _users_page(request: Request[Any, Any, Any], error: str | None = None, status: int = 200) -> Template:
    response = page(request, "auth/users.html", users=await service.list_users(), roles=ROLES, error=error)
    response.status_code = status
    return response


@get("/admin/users", opt=ADMIN)
async def users_page(request: Request[Any, Any, Any]) -> Template:
    return await _users_page(request)


@post("/admin/users", opt=ADMIN)
async def users_add(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    try:
        await service.create_user(
            str(form.get("username") or "").strip(), str(form.get("role") or "viewer"),
            str(form.get("password") or ""), actor=_me(request),
        )  # fmt: skip
    except (service.AccountError, PasswordError) as exc:
        return await _users_page(request, str(exc), 400)
    return Redirect("/admin/users", status_code=303)


@post("/admin/users/{username:str}", opt=ADMIN)
async def users_change(request: Request[Any, Any, Any], username: FromPath[str]) -> Response[Any]:
    form = await request.form()
    change = UserChange(
        role=str(form["role"]) if form.get("role") else None,
        active={"1": True, "0": False}.get(str(form.get("active"))),
    )
    try:
        await _change_user(request, username, change)
    except (service.AccountError, ClientException) as exc:
        return await _users_page(request, str(getattr(exc, "detail", exc)), 400)
    return Redirect("/admin/users", status_code=303)


async def _tokens_page(request: Request[Any, Any, Any], new_token: NewToken | None = None) -> Template:
    tokens = await service.list_tokens(_me(request))
    return page(request, "auth/tokens.html", tokens=tokens, new_token=new_token)


@get("/account/tokens", opt=ANY_USER)
async def tokens_page(request: Request[Any, Any, Any]) -> Template:
    return await _tokens_page(request)


@post("/account/tokens", opt=ANY_USER, status_code=200)
async def tokens_create(request: Request[Any, Any, Any]) -> Template:
    form = await request.form()
    new = await service.create_token(_me(request), str(form.get("label") or ""), actor=_me(request))
    return await _tokens_page(request, new)


@post("/account/tokens/{token_id:int}/revoke", opt=ANY_USER)
async def tokens_revoke(request: Request[Any, Any, Any], token_id: RowId) -> Redirect:
    await _revoke(request, token_id)
    return Redirect("/account/tokens", status_code=303)


@get("/admin/audit", opt=ADMIN)
async def audit_page(
    request: Request[Any, Any, Any], action: FromQuery[str | None] = None, cursor: Cursor = None
) -> Template:
    entries = await audit.list_entries(limit=50, before=cursor, action=action or None)
    return page(request, "auth/audit.html", entries=entries, action=action or "")


API = [api_me, api_users, api_change_user, api_tokens, api_create_token, api_revoke_token, api_audit]
PAGES = [users_page, users_add, users_change, tokens_page, tokens_create, tokens_revoke, audit_page]
