"""What the auth API answers and accepts."""

from __future__ import annotations

from typing import Any

import msgspec


class UserOut(msgspec.Struct, kw_only=True):
    id: int
    username: str
    role: str
    active: bool
    sso: bool
    created_at: str
    last_login_at: str | None


class TokenOut(msgspec.Struct, kw_only=True):
    id: int
    username: str
    label: str
    prefix: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class NewToken(msgspec.Struct, kw_only=True):
    token: str  # shown once
    info: TokenOut


class TokenRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    label: str = ""


class AuditOut(msgspec.Struct, kw_only=True):
    id: int
    at: str
    actor: str | None
    action: str
    target: str | None
    address: str | None
    detail: dict[str, Any]


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditOut]
    next_cursor: int | None
