"""From verified ID-token claims to a FurrSight account (created at first sign-in when allowed)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from furrsight.auth import audit, service
from furrsight.auth.oidc import OIDC, OIDCError
from furrsight.auth.roles import CurrentUser
from furrsight.auth.tables import User


def _username(claims: dict[str, Any]) -> str:
    raw = str(claims.get("preferred_username") or claims.get("email") or claims["sub"])
    name = re.sub(r"[^A-Za-z0-9._@-]", "-", raw).strip("-._@")[:56] or "user"
    return name


async def account_for(oidc: OIDC, claims: dict[str, Any], address: str | None = None) -> CurrentUser:
    subject = f"{claims['iss']}|{claims['sub']}"
    role = oidc.role_for(claims)
    row = await User.select().where(User.oidc_subject == subject).first()
    if row is None:
        if not oidc.settings.oidc_auto_create:
            await audit.record("login.failed", target=_username(claims), address=address, reason="no account", sso=True)
            raise OIDCError("you have no FurrSight account yet: ask an admin to create one")
        name = _username(claims)
        if await User.exists().where(User.username == name):
            name = f"{name}-{hashlib.sha256(subject.encode()).hexdigest()[:6]}"
        await service.create_user(name, role or oidc.settings.oidc_default_role, oidc_subject=subject, actor="oidc")
        row = await User.select().where(User.oidc_subject == subject).first()
        assert row is not None
    elif role and role != row["role"]:
        await service.set_role(row["username"], role, actor="oidc")
        row["role"] = role
    if not row["active"]:
        await audit.record("login.failed", target=row["username"], address=address, reason="disabled", sso=True)
        raise OIDCError("this account is disabled: ask an admin")
    return CurrentUser(id=row["id"], username=row["username"], role=row["role"], via="session")
