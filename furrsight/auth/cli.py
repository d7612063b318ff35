"""``furrsight users``: add, set-password, list, disable, enable, set-role, token, tokens, revoke-token."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from furrsight.auth import service
from furrsight.auth.passwords import PasswordError
from furrsight.auth.roles import ROLES
from furrsight.settings import SettingsError, load_settings

app = typer.Typer(help="Accounts and API tokens.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def _run(work: Awaitable[T]) -> T:
    """Open the (migrated) database and run ``work``; bad input exits 1 with its message."""
    from furrsight.db.setup import migrate

    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc

    async def go() -> T:
        await migrate(settings)
        return await work

    try:
        return asyncio.run(go())
    except (service.AccountError, PasswordError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("Password", hide_input=True)
    if first != typer.prompt("Password again", hide_input=True):
        err.print("[red]the two passwords differ[/red]")
        raise typer.Exit(1)
    return str(first)


@app.command("add")
def add(
    name: str,
    role: str = typer.Option("viewer", help=f"one of {', '.join(ROLES)}"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
) -> None:
    """Create a local account (the password is asked twice)."""
    password = _read_password(password_stdin)
    user = _run(service.create_user(name, role, password, actor="cli"))
    console.print(f"user {user.username} created ({user.role})")


@app.command("set-password")
def set_password(
    name: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
) -> None:
    """Set a local account's password (asked twice)."""
    password = _read_password(password_stdin)
    _run(service.set_password(name, password, actor="cli"))
    console.print(f"password of {name} changed")


@app.command("list")
def list_users() -> None:
    """List the accounts."""
    table = Table("name", "role", "sign-in", "state", "last sign-in")
    for u in _run(service.list_users()):
        table.add_row(u.username, u.role, "sso" if u.sso else "password", "active" if u.active else "disabled",
                      u.last_login_at or "never")  # fmt: skip
    console.print(table)


@app.command("disable")
def disable(name: str) -> None:
    """Disable an account: its sessions and tokens stop working at once."""
    _run(service.set_active(name, False, actor="cli"))
    console.print(f"user {name} disabled")


@app.command("enable")
def enable(name: str) -> None:
    """Enable a disabled account again."""
    _run(service.set_active(name, True, actor="cli"))
    console.print(f"user {name} enabled")


@app.command("set-role")
def set_role(name: str, role: str = typer.Argument(..., help=f"one of {', '.join(ROLES)}")) -> None:
    """Change an account's role."""
    _run(service.set_role(name, role, actor="cli"))
    console.print(f"user {name} is now {role}")


@app.command("token")
def token(name: str, label: str = typer.Option("", help="what the token is for")) -> None:
    """Make an API token for NAME; it is printed once, on the last line."""
    new = _run(service.create_token(name, label, actor="cli"))
    console.print(f"token {new.info.id} for {name} (send it as 'Authorization: Bearer …'; it is not shown again):")
    print(new.token)


@app.command("tokens")
def tokens(name: str = typer.Argument(None, help="only this user's tokens")) -> None:
    """List API tokens (never the tokens themselves)."""
    table = Table("id", "user", "label", "starts with", "created", "last used", "state")
    for t in _run(service.list_tokens(name)):
        table.add_row(str(t.id), t.username, t.label, t.prefix + "…", t.created_at, t.last_used_at or "never",
                      "revoked" if t.revoked_at else "active")  # fmt: skip
    console.print(table)


@app.command("revoke-token")
def revoke_token(token_id: int) -> None:
    """Revoke an API token by its id (see `furrsight users tokens`)."""
    t = _run(service.revoke_token(token_id, actor="cli"))
    console.print(f"token {t.id} of {t.username} revoked")
