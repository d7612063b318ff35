"""Failed sign-ins are throttled per account and per address (Valkey counters, 429 + Retry-After)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from furrsight.auth import audit, service
from furrsight.auth.throttle import Throttle
from furrsight.jobs.broker import valkey_client
from furrsight.settings import Settings
from tests.conftest import app_client, user_with_token
from tests.test_auth_local import browser_login


@pytest.fixture(scope="module")
async def strict(migrated: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    await user_with_token("admin")
    auth = msgspec.structs.replace(
        migrated.auth, max_failures_per_account=3, max_failures_per_address=6, failure_window_seconds=120
    )
    # its own key prefix, so that other tests' failures from the same test address do not count
    settings = msgspec.structs.replace(migrated, auth=auth, broker_namespace="throttletest")
    async with app_client(settings) as client:
        yield client


async def test_account_then_address_limits(strict: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await service.create_user("thr-gina", "viewer", "the right password")
    for _ in range(3):
        assert (await browser_login(strict, "thr-gina", "a wrong one")).status_code == 401
    blocked = await browser_login(strict, "thr-gina", "the right password")  # right, but too late
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 120
    assert "too many failed sign-ins" in blocked.text
    # the address: 3 failures so far, 3 more on names that do not exist, then everyone waits
    for name in ("thr-x1", "thr-x2", "thr-x3"):
        assert (await browser_login(strict, name, "whatever")).status_code == 401
    assert (await browser_login(strict, "thr-fresh-name", "whatever")).status_code == 429
    throttled = await audit.list_entries(action="login.throttled", limit=20)
    assert {"thr-gina", "thr-fresh-name"} <= {e.target for e in throttled.items}


async def test_success_clears_the_account_counter(migrated: Settings) -> None:
    throttle = Throttle(valkey_client(migrated), migrated.auth, prefix="throttletest2:auth:fail")
    await service.create_user("thr-hank", "viewer", "the right password")
    await throttle.failed("10.9.9.9", "thr-hank")
    await throttle.failed("10.9.9.9", "thr-hank")
    await throttle.succeeded("thr-hank")
    assert await throttle.retry_after("10.9.9.8", "thr-hank") == 0
