"""Roles, API tokens, the audit log, and the lock on every registered route."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient

from furrsight.auth import audit, service
from furrsight.auth.state import CSRF_COOKIE
from tests.conftest import user_with_token

# The only routes an anonymous visitor may reach.
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/setup"),
    ("POST", "/setup"),
    ("GET", "/auth/oidc/login"),
    ("GET", "/auth/oidc/callback"),
    ("GET", "/static/{file_path:path}"),
    ("HEAD", "/static/{file_path:path}"),
}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+):(\w+)\}", lambda m: {"int": "1", "path": "x"}.get(m.group(2), "someone"), path).replace(
        "//", "/"
    )


async def test_every_route_is_locked_for_anonymous_visitors(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await anon_client.get("/login")  # a CSRF cookie, so that only the guard can refuse
    csrf = anon_client.cookies.get(CSRF_COOKIE)
    seen_public, walked = set(), 0
    for route in anon_client.app.routes:
        for method in sorted(getattr(route, "methods", ())):
            if method == "OPTIONS":
                continue
            if (method, route.path) in PUBLIC:
                seen_public.add((method, route.path))
                continue
            path = concrete(route.path)
            response = await anon_client.request(
                method, path, headers={"x-csrftoken": csrf, "accept": "text/html"}, follow_redirects=False
            )
            walked += 1
            if path.startswith("/api/") or path == "/metrics":  # /metrics: a scraper reads it, no redirect
                assert response.status_code == 401, f"{method} {route.path} answered {response.status_code}"
                assert "sign in first" in response.text
            else:
                assert response.status_code == 303, f"{method} {route.path} answered {response.status_code}"
                assert response.headers["location"].startswith("/login?next="), (method, route.path)
    assert seen_public == PUBLIC  # the public list is exactly what the app registers
    assert walked > 20


async def test_an_htmx_request_without_a_session_is_sent_to_login(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await anon_client.get("/jobs", headers={"hx-request": "true"}, follow_redirects=False)
    assert response.headers["hx-redirect"] == "/login?next=%2Fjobs"


async def test_viewer_reads_but_cannot_start_jobs(viewer_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await viewer_client.get("/api/v1/jobs")).status_code == 200
    refused = await viewer_client.post("/api/v1/imports", json={"path": "/tmp"})
    assert refused.status_code == 403
    assert refused.json()["error"].endswith("needs the curator role")
    page = await viewer_client.post("/imports", data={"path": "/tmp"}, headers={"accept": "text/html"})
    assert page.status_code == 403 and "needs the curator role" in page.text and "<html" in page.text
    gallery = (await viewer_client.get("/images", headers={"accept": "text/html"})).text
    assert ">Add images</a>" not in gallery and 'href="/admin/users"' not in gallery


async def test_curator_starts_jobs_but_cannot_manage_users(curator_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    started = await curator_client.post("/api/v1/imports", json={"path": "/not/below/a/root"})
    assert started.status_code == 400  # past the guard: the path is what is wrong
    refused = await curator_client.get("/api/v1/users")
    assert refused.status_code == 403 and refused.json()["error"].endswith("needs the admin role")
    assert (await curator_client.get("/admin/audit")).status_code == 403


async def test_admin_changes_roles_and_it_is_audited(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await service.create_user("role-carol", "viewer", "long enough")
    changed = await client.patch("/api/v1/users/role-carol", json={"role": "curator"})
    assert changed.status_code == 200 and changed.json()["role"] == "curator"
    bad = await client.patch("/api/v1/users/role-carol", json={"role": "superuser"})
    assert bad.status_code == 400 and "unknown role" in bad.json()["error"]
    missing = await client.patch("/api/v1/users/nobody-here", json={"active": False})
    assert missing.status_code == 400 and "no user named" in missing.json()["error"]
    own = await client.patch("/api/v1/users/test-admin", json={"role": "viewer"})
    assert own.status_code == 400
    entries = (await client.get("/api/v1/audit", params={"action": "user.role"})).json()["items"]
    assert any(e["target"] == "role-carol" and e["detail"] == {"old": "viewer", "new": "curator"} for e in entries)


async def test_users_page_adds_and_disables(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    added = await client.post(
        "/admin/users", data={"username": "page-dave", "role": "curator", "password": "long enough"}
    )
    assert added.status_code == 200 and "page-dave" in added.text
    short = await client.post("/admin/users", data={"username": "page-erin", "role": "viewer", "password": "short"})
    assert short.status_code == 400 and "too short" in short.text
    await client.post("/admin/users/page-dave", data={"active": "0"})
    assert not (await service.get_user("page-dave")).active


async def test_revoked_token_stops_working(migrated, client: AsyncTestClient) -> None:  # type: ignore[no-untyped-def,type-arg]
    from tests.conftest import app_client

    name, token = await user_with_token("viewer", "token-frank")
    async with app_client(migrated, token) as frank:
        assert (await frank.get("/api/v1/me")).json()["username"] == name
        mine = (await frank.get("/api/v1/tokens")).json()
        assert mine and all(t["username"] == name for t in mine) and "token" not in mine[0]
        other = (await client.post("/api/v1/tokens", json={"label": "admin's"})).json()
        assert (await frank.delete(f"/api/v1/tokens/{other['info']['id']}")).status_code == 404
        token_id = next(t["id"] for t in mine if t["revoked_at"] is None)
        assert (await frank.delete(f"/api/v1/tokens/{token_id}")).json()["revoked_at"]
        assert (await frank.get("/api/v1/me")).status_code == 401
    actions = {(e.action, e.target) for e in (await audit.list_entries(limit=200)).items}
    assert ("token.create", name) in actions and ("token.revoke", name) in actions


async def test_tokens_page_shows_a_new_token_once(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    made = await client.post("/account/tokens", data={"label": "notebook"})
    token = re.search(r"fst_[\w-]+", made.text)
    assert made.status_code == 200 and token
    listed = (await client.get("/account/tokens")).text
    assert "notebook" in listed and token.group(0) not in listed


async def test_audit_pages_through_entries(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    for i in range(5):
        await audit.record("test.paging", actor="pager", target=str(i))
    first = (await client.get("/api/v1/audit", params={"action": "test.paging", "limit": 3})).json()
    second = (
        await client.get("/api/v1/audit", params={"action": "test.paging", "limit": 3, "cursor": first["next_cursor"]})
    ).json()
    targets = [e["target"] for e in first["items"] + second["items"]]
    assert targets[:5] == ["4", "3", "2", "1", "0"]
    page = await client.get("/admin/audit", params={"action": "test.paging"})
    assert page.status_code == 200 and "pager" in page.text


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer "])
async def test_bad_bearer_token_is_401_even_with_a_session(anon_client: AsyncTestClient, header: str) -> None:  # type: ignore[type-arg]
    response = await anon_client.post("/api/v1/imports", json={"path": "/x"}, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_job_buttons_show_only_for_curators(
    viewer_client: AsyncTestClient,  # type: ignore[type-arg]
    curator_client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    from furrsight.jobs.tables import Job

    job = Job(kind="test.buttons", status="failed", error="for the buttons test")
    await job.save()
    seen_by_viewer = (await viewer_client.get(f"/jobs/{job.id}")).text
    seen_by_curator = (await curator_client.get(f"/jobs/{job.id}")).text
    assert "for the buttons test" in seen_by_viewer and "/retry" not in seen_by_viewer
    assert "/retry" in seen_by_curator


async def test_openapi_spec_names_the_bearer_scheme(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    spec = (await client.get("/schema/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    assert {"BearerToken": []} in spec["security"]


async def test_disabling_a_user_stops_their_tokens_and_password(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    from tests.test_auth_local import browser_login

    name, token = await user_with_token("curator", "dis-ursula")
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await anon_client.get("/api/v1/me", headers=bearer)).status_code == 200
    await service.set_active(name, False, actor="test")
    assert (await anon_client.get("/api/v1/me", headers=bearer)).status_code == 401
    refused = await browser_login(anon_client, name, "password-of-" + name)
    assert refused.status_code == 401 and "wrong user name or password" in refused.text
    await service.set_active(name, True, actor="test")
    assert (await anon_client.get("/api/v1/me", headers=bearer)).json()["username"] == name
