"""Local accounts in the browser: sign-in, cookies, CSRF, logout, session expiry."""

from __future__ import annotations

import time

import msgspec
import pytest
from litestar.stores.valkey import ValkeyStore
from litestar.testing import AsyncTestClient

from furrsight.auth import audit, service
from furrsight.auth.sessions import COOKIE, SessionData, Sessions
from furrsight.auth.state import CSRF_COOKIE
from furrsight.jobs.broker import valkey_client
from furrsight.settings import Settings
from tests.conftest import app_client, user_with_token


async def make_user(name: str, role: str = "viewer", password: str = "correct horse") -> str:
    await service.create_user(name, role, password)
    return password


async def browser_login(client: AsyncTestClient, name: str, password: str, next_url: str = "/jobs"):  # type: ignore[no-untyped-def,type-arg]
    await client.get("/login")
    csrf = client.cookies.get(CSRF_COOKIE)
    form = {"username": name, "password": password, "next": next_url, "_csrf_token": csrf}
    return await client.post("/login", data=form, follow_redirects=False)


def own_sessions(client: AsyncTestClient) -> Sessions:  # type: ignore[type-arg]
    """The app's session store, through a Valkey client of this test's event loop."""
    state = client.app.state.auth  # type: ignore[attr-defined]
    return Sessions(ValkeyStore(valkey_client(state.settings), namespace=state.store.namespace), state.settings.auth)


def set_cookie_header(response, name: str) -> str:  # type: ignore[no-untyped-def]
    return next(v for v in response.headers.get_list("set-cookie") if v.startswith(name + "="))


async def test_sign_in_sets_a_safe_session_cookie_and_shows_the_user(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    password = await make_user("local-alice", "curator")
    done = await browser_login(anon_client, "local-alice", password)
    assert done.status_code == 303 and done.headers["location"] == "/jobs"
    cookie = set_cookie_header(done, COOKIE).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # plain http here
    page = await anon_client.get("/images")
    assert page.status_code == 200
    assert "local-alice" in page.text and 'action="/logout"' in page.text and 'href="/upload"' in page.text


async def test_the_csrf_token_changes_at_sign_in(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """A token an attacker planted or saw before sign-in is worth nothing after it."""
    password = await make_user("local-rotate", "curator")
    await anon_client.get("/login")
    before = anon_client.cookies.get(CSRF_COOKIE)
    done = await browser_login(anon_client, "local-rotate", password)
    assert done.status_code == 303
    assert set_cookie_header(done, CSRF_COOKIE).startswith(f'{CSRF_COOKIE}="";')
    page = await anon_client.get("/images")
    after = anon_client.cookies.get(CSRF_COOKIE)
    assert page.status_code == 200 and after and after != before
    stale = await anon_client.post("/imports", data={"path": "/nowhere", "_csrf_token": before})
    assert stale.status_code == 403


async def test_cookies_are_secure_over_https(migrated: Settings) -> None:
    password = await make_user("local-https")
    async with app_client(migrated, base_url="https://testserver.local") as client:
        first = await client.get("/login")
        assert "secure" in set_cookie_header(first, CSRF_COOKIE).lower()
        done = await browser_login(client, "local-https", password)
        assert done.status_code == 303, done.text
        assert "secure" in set_cookie_header(done, COOKIE).lower()


async def test_unknown_user_and_wrong_password_get_the_same_answer(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await make_user("local-bob", password="the right one")
    wrong = await browser_login(anon_client, "local-bob", "not the right one")
    unknown = await browser_login(anon_client, "nobody-by-that-name", "not the right one")
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong user name or password" in wrong.text and "wrong user name or password" in unknown.text
    assert COOKIE not in anon_client.cookies
    failed = await audit.list_entries(action="login.failed", limit=50)
    assert {"local-bob", "nobody-by-that-name"} <= {e.target for e in failed.items}


async def test_post_without_csrf_token_is_refused(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    password = await make_user("local-csrf", "curator")
    await anon_client.get("/login")
    no_token = await anon_client.post("/login", data={"username": "local-csrf", "password": password})
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    assert (await browser_login(anon_client, "local-csrf", password)).status_code == 303
    await anon_client.get("/jobs")  # the page the sign-in leads to brings the new token
    # signed in, a form post or an HTMX request still needs the token
    refused = await anon_client.post("/imports", data={"path": "/nowhere"}, headers={"hx-request": "true"})
    assert refused.status_code == 403
    csrf = anon_client.cookies.get(CSRF_COOKIE)
    with_header = await anon_client.post(
        "/imports", data={"path": "/nowhere"}, headers={"hx-request": "true", "x-csrftoken": csrf}
    )
    assert with_header.status_code == 400  # past CSRF and the guard: the path itself is refused


async def test_pages_carry_the_csrf_token_for_htmx_and_forms(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    password = await make_user("local-forms", "curator")
    await browser_login(anon_client, "local-forms", password)
    page = (await anon_client.get("/upload")).text
    assert 'hx-headers=\'{"x-csrftoken"' in page and 'name="_csrf_token"' in page


async def test_logout_ends_the_session_on_the_server(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    password = await make_user("local-logout")
    await browser_login(anon_client, "local-logout", password)
    sid = anon_client.cookies.get(COOKIE)
    assert sid and (await anon_client.get("/jobs")).status_code == 200
    csrf = anon_client.cookies.get(CSRF_COOKIE)
    out = await anon_client.post("/logout", data={"_csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert await own_sessions(anon_client).load(sid) is None
    anon_client.cookies.set(COOKIE, sid)  # a copy of the old cookie is worthless now
    again = await anon_client.get("/jobs", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/login?next=%2Fjobs"


async def test_sessions_expire_when_idle_and_after_the_absolute_limit(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    state = anon_client.app.state.auth  # type: ignore[attr-defined]
    sessions = own_sessions(anon_client)
    user = await service.create_user("local-expiry", "viewer", "long enough")
    sid = await sessions.create(user.id)
    ttl = await sessions.store.expires_in(sid)
    assert 0 < ttl <= state.settings.auth.session_idle_minutes * 60  # idle: Valkey drops it
    assert await sessions.load(sid) is not None
    old = SessionData(user.id, time.time() - state.settings.auth.session_absolute_hours * 3600 - 1)
    await sessions.store.set(sid, msgspec.json.encode(old), expires_in=60)
    assert await sessions.load(sid) is None  # absolute limit reached although in use
    anon_client.cookies.set(COOKIE, sid)
    assert (await anon_client.get("/api/v1/me")).status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
async def test_sign_in_never_redirects_off_site(anon_client: AsyncTestClient, target: str) -> None:  # type: ignore[type-arg]
    name = f"local-next-{abs(hash(target)) % 10_000}"
    password = await make_user(name)
    done = await browser_login(anon_client, name, password, next_url=target)
    assert done.status_code == 303 and done.headers["location"] == "/"


async def test_disabled_password_login_is_refused(migrated: Settings) -> None:
    await user_with_token("admin")
    password = await make_user("local-off")
    settings = msgspec.structs.replace(migrated, auth=msgspec.structs.replace(migrated.auth, local_login=False))
    async with app_client(settings) as client:
        refused = await browser_login(client, "local-off", password)
        assert refused.status_code == 403 and "switched off" in refused.text


async def test_secure_cookies_behind_a_proxy_that_says_https(migrated: Settings) -> None:
    """uvicorn (run with proxy_headers) turns a trusted proxy's X-Forwarded-Proto into the scheme."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    async with app_client(migrated) as client:
        client.app.asgi_handler = ProxyHeadersMiddleware(client.app.asgi_handler, trusted_hosts="*")  # type: ignore[attr-defined]
        plain = await client.get("/login")
        assert "secure" not in set_cookie_header(plain, CSRF_COOKIE).lower()
        client.cookies.clear()
        proxied = await client.get("/login", headers={"x-forwarded-proto": "https", "x-forwarded-for": "10.0.0.9"})
        assert "secure" in set_cookie_header(proxied, CSRF_COOKIE).lower()
