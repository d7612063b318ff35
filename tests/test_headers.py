"""Protective headers on every answer, and pages that keep working under them: no inline script,
style or event handler anywhere (the Content-Security-Policy would block it), and a hostile file
name is shown as text."""

from __future__ import annotations

from litestar.testing import AsyncTestClient
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from furrsight.web.headers import SECURITY_HEADERS
from tests.conftest import WorkerProcess, wait_for_job
from tests.images import photo

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGES = [
    "/images", "/upload", "/jobs", "/queries", "/scrape", "/search", "/search/duplicates", "/breeds", "/models",
    "/admin/users", "/admin/audit", "/admin/status", "/account/tokens", "/pairs", "/taxonomy", "/schedules",
]  # fmt: skip


def assert_protected(headers: object) -> None:
    assert headers["content-security-policy"] == CSP  # type: ignore[index]
    assert headers["x-frame-options"] == "DENY"  # type: ignore[index]
    assert headers["referrer-policy"] == "same-origin"  # type: ignore[index]
    assert headers["x-content-type-options"] == "nosniff"  # type: ignore[index]


def test_the_policy_allows_only_our_own_scripts_and_styles_and_no_framing() -> None:
    assert SECURITY_HEADERS["content-security-policy"] == CSP
    assert "unsafe" not in CSP and "*" not in CSP


async def test_every_kind_of_answer_carries_the_headers(client: AsyncTestClient, anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    answers = [
        await anon_client.get("/login"),  # a page, signed out
        await anon_client.get("/images", follow_redirects=False),  # a redirect to sign in
        await anon_client.get("/static/furrsight.css"),
        await anon_client.get("/no/such/path", headers={"Accept": "text/html"}),  # 404 of the router
        await client.get("/images"),  # a page, signed in
        await client.get("/api/v1/jobs"),
        await client.get("/api/v1/jobs/987654321"),  # an API error
        await client.get("/schema/openapi.json"),
        await client.get("/health"),
        await client.options("/api/v1/images"),
    ]
    statuses = [a.status_code for a in answers]
    assert statuses[:8] == [200, 303, 200, 404, 200, 200, 404, 200] and statuses[9] == 204
    assert statuses[8] in (200, 503)  # /health: 503 while no worker runs
    for answer in answers:
        assert_protected(answer.headers)


async def test_options_lists_every_method_of_the_path(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await client.options("/api/v1/images")).headers["allow"] == "GET, OPTIONS, POST"
    assert (await client.options("/api/v1/queries")).headers["allow"] == "GET, OPTIONS, POST"


async def test_405_names_the_allowed_methods(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    answer = await client.put("/api/v1/jobs")
    assert answer.status_code == 405 and set(answer.headers["allow"].split(", ")) == {"GET", "OPTIONS"}


async def test_pages_have_no_inline_script_style_or_handlers(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    for path in PAGES:
        answer = await client.get(path, headers={"Accept": "text/html"})
        assert answer.status_code == 200, path
        tree = HTMLParser(answer.text)
        scripts = tree.css("script")
        assert scripts and all(s.attributes.get("src", "").startswith("/static/") for s in scripts), path
        assert not tree.css("style"), path
        for node in tree.css("*"):
            inline = [a for a in node.attributes if a == "style" or a.startswith("on")]
            assert not inline, f"{path}: <{node.tag} {inline}>"
        sheets = [link.attributes.get("href") for link in tree.css("link[rel=stylesheet]")]
        assert sheets == ["/static/furrsight.css"], path


async def test_the_pages_script_is_served(anon_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    answer = await anon_client.get("/static/furrsight.js")
    assert answer.status_code == 200 and "data-autosubmit" in answer.text
    assert answer.headers["content-type"].startswith(("text/javascript", "application/javascript"))


async def test_a_hostile_file_name_is_shown_as_text(client: AsyncTestClient, worker: WorkerProcess) -> None:  # type: ignore[type-arg]
    name = '"><script>alert(1)</script>.jpg'
    job = (await client.post("/api/v1/images", files=[("files", (name, photo(9123), "image/jpeg"))])).json()
    done = await wait_for_job(client, job["id"])
    assert done["counters"] == {"new": 1}
    image_id = (await client.get("/api/v1/images", params={"source": "upload", "limit": 1})).json()["items"][0]["id"]
    page = await client.get(f"/images/{image_id}", headers={"Accept": "text/html"})
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in page.text
    assert "<script>alert(1)" not in page.text
