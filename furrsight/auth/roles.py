"""Roles and the signed-in user as handlers see it (``request.user`` / ``scope["user"]``)."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "curator", "admin")  # each role can do everything the ones before it can
RANK = {role: i for i, role in enumerate(ROLES)}


def check_role(role: str) -> str:
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def allows(role: str, needed: str) -> bool:
    return RANK.get(role, -1) >= RANK[needed]


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    via: str  # "session" or "token"

    def can(self, needed: str) -> bool:
        return allows(self.role, needed)
