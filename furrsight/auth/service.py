"""Accounts and API tokens: plain async functions the CLI, the routes and the tests call."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from furrsight.auth import audit
from furrsight.auth.passwords import hash_password, verify_password
from furrsight.auth.roles import CurrentUser, check_role
from furrsight.auth.schemas import NewToken, TokenOut, UserOut
from furrsight.auth.tables import ApiToken, User
from furrsight.db.piccolo_conf import DATABASE

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
TOKEN_PREFIX = "fst_"  # noqa: S105  (a marker, not a secret)


class AccountError(ValueError):
    """Bad input about an account (unknown name, taken name, bad role…); the message says which."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _user_out(row: dict[str, Any]) -> UserOut:
    return UserOut(
        id=row["id"], username=row["username"], role=row["role"], active=row["active"],
        sso=row["oidc_subject"] is not None, created_at=row["created_at"].isoformat(),
        last_login_at=_iso(row["last_login_at"]),
    )  # fmt: skip


def check_username(name: str) -> str:
    if not USERNAME.match(name):
        raise AccountError(f"invalid user name {name!r}: use letters, digits and . _ @ - (at most 64)")
    return name


async def count_users() -> int:
    return await User.count()


async def create_user(
    username: str, role: str, password: str | None = None, *, oidc_subject: str | None = None, actor: str | None = None
) -> UserOut:
    check_username(username)
    try:
        check_role(role)
    except ValueError as exc:
        raise AccountError(str(exc)) from exc
    hashed = hash_password(password) if password is not None else None
    async with DATABASE.write_transaction():
        if await User.exists().where(User.username == username):
            raise AccountError(f"the user {username!r} already exists")
        row = User(username=username, role=role, password_hash=hashed, oidc_subject=oidc_subject)
        await row.save()
    await audit.record("user.create", actor=actor, target=username, role=role, sso=oidc_subject is not None)
    return await get_user(username)


async def _row(username: str) -> dict[str, Any]:
    row = await User.select().where(User.username == username).first()
    if row is None:
        raise AccountError(f"no user named {username!r}")
    return row


async def get_user(username: str) -> UserOut:
    return _user_out(await _row(username))


async def list_users() -> list[UserOut]:
    return [_user_out(r) for r in await User.select().order_by(User.username)]


async def set_active(username: str, active: bool, actor: str | None = None) -> UserOut:
    await _row(username)
    await User.update({User.active: active}).where(User.username == username)
    await audit.record("user.enable" if active else "user.disable", actor=actor, target=username)
    return await get_user(username)


async def set_role(username: str, role: str, actor: str | None = None) -> UserOut:
    try:
        check_role(role)
    except ValueError as exc:
        raise AccountError(str(exc)) from exc
    old = (await _row(username))["role"]
    await User.update({User.role: role}).where(User.username == username)
    await audit.record("user.role", actor=actor, target=username, old=old, new=role)
    return await get_user(username)


async def set_password(username: str, password: str, actor: str | None = None) -> None:
    await _row(username)
    await User.update({User.password_hash: hash_password(password)}).where(User.username == username)
    await audit.record("user.password", actor=actor, target=username)


async def check_password(username: str, password: str) -> CurrentUser | None:
    """The user when the name and password match an active local account, else None; an
    unknown name costs the same argon2 work as a wrong password."""
    row = await User.select().where(User.username == username).first()
    ok = verify_password(row["password_hash"] if row else None, password)
    if not ok or row is None or not row["active"]:
        return None
    return CurrentUser(id=row["id"], username=row["username"], role=row["role"], via="session")


async def mark_login(user_id: int) -> None:
    await User.update({User.last_login_at: datetime.now(UTC)}).where(User.id == user_id)


async def active_user(user_id: int, via: str) -> CurrentUser | None:
    row = await User.select(User.id, User.username, User.role, User.active).where(User.id == user_id).first()
    if row is None or not row["active"]:
        return None
    return CurrentUser(id=row["id"], username=row["username"], role=row["role"], via=via)


# -- API tokens --------------------------------------------------------------------------------
def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_out(row: dict[str, Any]) -> TokenOut:
    return TokenOut(
        id=row["id"], username=row["user.username"], label=row["label"], prefix=row["prefix"],
        created_at=row["created_at"].isoformat(), last_used_at=_iso(row["last_used_at"]),
        revoked_at=_iso(row["revoked_at"]),
    )  # fmt: skip


async def create_token(username: str, label: str = "", actor: str | None = None) -> NewToken:
    """A new token for ``username``: returned once, stored only as its SHA-256."""
    user = await _row(username)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user=user["id"], label=label[:100], token_hash=_hash_token(token), prefix=token[:10])
    await row.save()
    await audit.record("token.create", actor=actor or username, target=username, token_id=row.id, label=label)
    return NewToken(token=token, info=await get_token(row.id))


_TOKEN_COLUMNS = (
    ApiToken.id, ApiToken.user.username, ApiToken.label, ApiToken.prefix, ApiToken.created_at,
    ApiToken.last_used_at, ApiToken.revoked_at,
)  # fmt: skip


async def get_token(token_id: int) -> TokenOut:
    row = await ApiToken.select(*_TOKEN_COLUMNS).where(ApiToken.id == token_id).first()
    if row is None:
        raise AccountError(f"no token with id {token_id}")
    return _token_out(row)


async def list_tokens(username: str | None = None) -> list[TokenOut]:
    query = ApiToken.select(*_TOKEN_COLUMNS).order_by(ApiToken.id, ascending=False)
    if username is not None:
        query = query.where(ApiToken.user.username == username)
    return [_token_out(r) for r in await query]


async def revoke_token(token_id: int, actor: str | None = None, owner: str | None = None) -> TokenOut:
    """Revoke a token; with ``owner`` only a token of that user (others are 'not found')."""
    token = await get_token(token_id)
    if owner is not None and token.username != owner:
        raise AccountError(f"no token with id {token_id}")
    if token.revoked_at is None:
        await ApiToken.update({ApiToken.revoked_at: datetime.now(UTC)}).where(ApiToken.id == token_id)
        await audit.record("token.revoke", actor=actor, target=token.username, token_id=token_id)
    return await get_token(token_id)


async def user_for_token(token: str) -> CurrentUser | None:
    """The active user a valid, unrevoked token belongs to (one query; a write at most once a minute)."""
    user = ApiToken.user
    row = (
        await ApiToken.select(
            ApiToken.id, ApiToken.revoked_at, ApiToken.last_used_at, user.id, user.username, user.role, user.active
        )
        .where(ApiToken.token_hash == _hash_token(token))
        .first()
    )
    if row is None or row["revoked_at"] is not None or not row["user.active"]:
        return None
    now = datetime.now(UTC)
    if row["last_used_at"] is None or (now - row["last_used_at"]).total_seconds() > 60:
        await ApiToken.update({ApiToken.last_used_at: now}).where(ApiToken.id == row["id"])
    return CurrentUser(id=row["user.id"], username=row["user.username"], role=row["user.role"], via="token")
