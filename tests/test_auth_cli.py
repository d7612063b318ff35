"""``furrsight users …`` on the real database."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from furrsight.auth import service
from furrsight.cli import app
from furrsight.settings import Settings

runner = CliRunner()


def test_users_add_list_disable_token_revoke(migrated: Settings) -> None:
    added = runner.invoke(app, ["users", "add", "cli-ivan", "--role", "curator"], input="long enough\nlong enough\n")
    assert added.exit_code == 0, added.output
    stdin = runner.invoke(app, ["users", "add", "cli-jane", "--password-stdin"], input="also long enough\n")
    assert stdin.exit_code == 0 and "viewer" in stdin.output
    twice = runner.invoke(app, ["users", "add", "cli-jane", "--password-stdin"], input="also long enough\n")
    assert twice.exit_code == 1 and "already exists" in twice.output
    differ = runner.invoke(app, ["users", "add", "cli-kim"], input="long enough\nother thing\n")
    assert differ.exit_code == 1 and "differ" in differ.output
    bad_role = runner.invoke(app, ["users", "add", "cli-lee", "--role", "boss", "--password-stdin"], input="x" * 9)
    assert bad_role.exit_code == 1 and "unknown role" in bad_role.output
    listed = runner.invoke(app, ["users", "list"])
    assert "cli-ivan" in listed.output and "curator" in listed.output
    assert runner.invoke(app, ["users", "set-role", "cli-jane", "admin"]).exit_code == 0
    changed = runner.invoke(app, ["users", "set-password", "cli-jane", "--password-stdin"], input="a new password\n")
    assert changed.exit_code == 0
    assert runner.invoke(app, ["users", "disable", "cli-ivan"]).exit_code == 0
    assert runner.invoke(app, ["users", "enable", "cli-ivan"]).exit_code == 0
    made = runner.invoke(app, ["users", "token", "cli-ivan", "--label", "script"])
    token = made.output.strip().splitlines()[-1]
    assert made.exit_code == 0 and token.startswith("fst_")
    listed_tokens = runner.invoke(app, ["users", "tokens", "cli-ivan"])
    assert "script" in listed_tokens.output and token not in listed_tokens.output
    token_id = made.output.split()[1]
    assert runner.invoke(app, ["users", "revoke-token", token_id]).exit_code == 0

    async def through_the_service() -> None:  # what the commands changed, as the web process sees it
        assert await service.check_password("cli-jane", "a new password") is not None
        users = {u.username: u for u in await service.list_users()}
        assert users["cli-jane"].role == "admin" and users["cli-ivan"].active
        assert all(t.revoked_at for t in await service.list_tokens("cli-ivan"))

    asyncio.run(through_the_service())  # the commands run their own event loops: this test has none
