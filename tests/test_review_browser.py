"""The review screen, bulk actions and the dashboard in a real browser (Playwright driving Debian's
Chromium) against a real `furrsight serve` on a loopback port, with a real Valkey.

Each test reviews pairs of its own source plugin (its own queue) in this module's own data
directory; waits are on conditions (Playwright's auto-waiting ``expect``), never on time. A failing
test leaves a screenshot of every page it had open under ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from furrsight.auth import service as accounts
from furrsight.db.setup import migrate, open_database
from furrsight.pairs import service as pairs
from furrsight.pairs.schemas import PairPatch
from furrsight.settings import Settings
from furrsight.supervisor import free_port
from tests.conftest import ROOT
from tests.review_data import seed_pairs

playwright = pytest.importorskip("playwright.async_api")
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "a long test password"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make system-deps)")


@pytest.fixture(scope="module")
async def own(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    settings = msgspec.structs.replace(
        migrated, data_dir=str(tmp_path_factory.mktemp("review-browser")), broker_namespace="review-browser"
    )
    await migrate(settings)
    for name in ("ann", "bob"):
        await accounts.create_user(f"browser-{name}", "curator", PASSWORD)
    try:
        yield settings
    finally:
        open_database(migrated)


@pytest.fixture(scope="module")
async def queues(own: Settings) -> dict[str, list[int]]:
    """Pairs per queue (source plugin), each queue in id order = review order ``oldest``."""
    sizes = {"keys": 10, "two": 3, "stale": 1, "bulk": 5}
    out, seed = {}, 91_000
    for plugin, size in sizes.items():
        out[plugin] = await seed_pairs(own, size, seed, plugin=plugin)
        seed += 2 * size
    return out


@pytest.fixture(scope="module")
def server(own: Settings, queues: dict[str, list[int]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`furrsight serve` on a free loopback port, for this module's data directory."""
    port, log = free_port(), tmp_path_factory.mktemp("review-server") / "serve.log"
    env = {**os.environ, "FURRSIGHT_DATA": own.data_dir, "FURRSIGHT_BROKER_NAMESPACE": own.broker_namespace}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "furrsight", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_serving(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError),
            urllib.request.urlopen(f"{url}/login", timeout=2) as response,
        ):
            if response.status == 200:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"furrsight serve did not come up; its log:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


class Screens:
    """Browser contexts a test opens; screenshots of their pages when the test fails."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.browser, self.url = browser, url
        self.contexts: list[BrowserContext] = []

    async def signed_in(self, user: str) -> Page:
        context = await self.browser.new_context(base_url=self.url, viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = await context.new_page()
        await page.goto("/login")
        await page.fill("input[name=username]", user)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page.locator("header .user")).to_contain_text(user)
        return page

    async def keep(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        for i, context in enumerate(self.contexts):
            for j, page in enumerate(context.pages):
                with contextlib.suppress(Exception):
                    await page.screenshot(path=str(ARTIFACTS / f"{name}-{i}-{j}.png"), full_page=True)


@pytest.fixture
async def screens(request: pytest.FixtureRequest, browser: Browser, server: str) -> AsyncIterator[Screens]:
    made = Screens(browser, server)
    yield made
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        await made.keep(request.node.name)
    for context in made.contexts:
        await context.close()


# -- helpers -----------------------------------------------------------------------------------
async def on_pair(page: Page, pair_id: int) -> None:
    """Wait until ``pair_id`` is on screen, nothing is running, and the keyboard focus is on the review."""
    await expect(page.locator(f".review-pair[data-pair='{pair_id}']")).to_be_visible()
    await expect(page.locator("#review")).to_have_attribute("data-busy", "0")
    await expect(page.locator("#review")).to_be_focused()


async def shown(page: Page) -> int:
    await expect(page.locator("#review")).to_have_attribute("data-busy", "0")
    return int(await page.locator(".review-pair").get_attribute("data-pair") or 0)


def state(pair: Any) -> tuple[Any, ...]:
    return (pair.status, pair.reject_reason, pair.breed, sorted(s.name for s in pair.services))


# -- tests -------------------------------------------------------------------------------------
async def test_ten_pairs_reviewed_by_keyboard_alone(screens: Screens, queues: dict[str, list[int]]) -> None:
    ids = queues["keys"]
    before = {i: await pairs.get_pair(i) for i in ids}
    page = await screens.signed_in("browser-ann")
    await page.goto("/review?plugin=keys&order=oldest")
    key = page.keyboard.press
    await on_pair(page, ids[0])
    await key("?")
    await expect(page.locator("#review-help")).to_be_visible()
    await key("Escape")
    await expect(page.locator("#review-help")).to_be_hidden()

    frames = page.locator(".zoomable")  # zoom on one image zooms both, the same; z resets
    await page.locator(".zoom-frame[data-side=before] .zoom-view").hover()
    await page.mouse.wheel(0, -300)
    await expect(frames.nth(0)).to_have_attribute("style", re.compile(r"scale\(1\.25\)"))
    assert await frames.nth(0).get_attribute("style") == await frames.nth(1).get_attribute("style")
    await key("z")
    await expect(frames.nth(1)).to_have_attribute("style", re.compile(r"translate\(0px, 0px\) scale\(1\)"))

    await key("a")  # 0: accept
    await on_pair(page, ids[1])
    await key("r")  # 1: reject, not the same dog
    await expect(page.locator("#reject-reasons")).to_be_visible()
    await key("1")
    await on_pair(page, ids[2])
    await key("s")  # 2: swap, then accept
    await expect(page.locator(".zoom-frame[data-side=before] img")).to_have_attribute(
        "src", f"/api/v1/images/{before[ids[2]].after_id}/file"
    )
    await key("a")
    await on_pair(page, ids[3])
    await key("1")  # 3: the first service (bath, the VLM's) off, the second on
    await expect(page.locator(".service-toggle").nth(0)).to_have_attribute("aria-pressed", "false")
    await key("2")
    await expect(page.locator(".service-toggle").nth(1)).to_have_attribute("aria-pressed", "true")
    await key("a")
    await on_pair(page, ids[4])
    await key("b")  # 4: the breed by type-ahead over an alias
    await expect(page.locator("#breed-input")).to_be_focused()
    await page.keyboard.type("yorkie")
    await expect(page.locator("#breed-suggestions li.active")).to_contain_text("Yorkshire Terrier")
    await key("Enter")
    await expect(page.locator("#breed-current")).to_have_text("Yorkshire Terrier")
    await expect(page.locator("#review")).to_be_focused()
    await key("a")
    await on_pair(page, ids[5])
    await key("a")  # 5: accept, undo (the pair comes back as it was), then reject as poor quality
    await on_pair(page, ids[6])
    await key("u")
    await on_pair(page, ids[5])
    await expect(page.locator(".review-labels")).to_have_attribute("data-status", "analysed")
    await key("r")
    await key("4")
    await on_pair(page, ids[6])
    await key(" ")  # 6: skipped
    await on_pair(page, ids[7])
    await key("a")  # 7: accept, Ctrl+Z, accept again
    await on_pair(page, ids[8])
    await key("Control+z")
    await on_pair(page, ids[7])
    await key("a")
    await on_pair(page, ids[8])
    await page.focus("#caption")  # 8: typing in a field fires no shortcut; Tab, Enter saves the caption
    await page.keyboard.type("a shaved poodle")
    await key("Tab")
    await key("Enter")
    await expect(page.locator(".review-history")).to_contain_text("a shaved poodle")
    await expect(page.locator("#review")).to_have_attribute("data-busy", "0")
    await expect(page.locator(".review-pair")).to_have_attribute("data-pair", str(ids[8]))
    await key("r")  # …and "other" needs a note: the note field takes the focus, Enter rejects
    await key("8")
    await expect(page.locator("#reject-note")).to_be_focused()
    await page.keyboard.type("a cat in the after photo")
    await key("Enter")
    await on_pair(page, ids[9])
    await key("k")  # previous: pair 8 again, then on to 9 with j
    await on_pair(page, ids[8])
    await key("j")
    await on_pair(page, ids[9])
    await key("a")  # 9
    await expect(page.locator(".review-empty")).to_be_visible()  # 6 was skipped: nothing left this session

    after = {i: await pairs.get_pair(i) for i in ids}
    assert [state(after[i]) for i in ids] == [
        ("accepted", None, "Poodle", ["Bath and blow-dry"]),
        ("rejected", "not_same_dog", "Poodle", ["Bath and blow-dry"]),
        ("accepted", None, "Poodle", ["Bath and blow-dry"]),
        ("accepted", None, "Poodle", [_service(1)]),
        ("accepted", None, "Yorkshire Terrier", ["Bath and blow-dry"]),
        ("rejected", "poor_quality", "Poodle", ["Bath and blow-dry"]),
        ("analysed", None, "Poodle", ["Bath and blow-dry"]),
        ("accepted", None, "Poodle", ["Bath and blow-dry"]),
        ("rejected", "other", "Poodle", ["Bath and blow-dry"]),
        ("accepted", None, "Poodle", ["Bath and blow-dry"]),
    ]
    swapped = after[ids[2]]
    assert (swapped.before_id, swapped.after_id, swapped.order_source) == (
        before[ids[2]].after_id,
        before[ids[2]].before_id,
        "human",
    )
    assert (after[ids[8]].caption, after[ids[8]].note) == ("a shaved poodle", "a cat in the after photo")
    assert {h.via for i in ids for h in await pairs.history(i) if h.field != "created"} == {"review"}
    assert {h.user for i in ids for h in await pairs.history(i) if h.field != "created"} == {"browser-ann"}


_SERVICES: list[str] = []


def _service(index: int) -> str:
    return _SERVICES[index]


@pytest.fixture(scope="module", autouse=True)
async def _service_names(own: Settings) -> None:
    from furrsight.taxonomy import service as taxonomy

    _SERVICES[:] = [s.name for s in await taxonomy.list_entries("services")]


async def test_two_reviewers_on_one_queue_never_see_the_same_pair(
    screens: Screens, queues: dict[str, list[int]]
) -> None:
    ann, bob = await screens.signed_in("browser-ann"), await screens.signed_in("browser-bob")
    await ann.goto("/review?plugin=two&order=oldest")
    first = await shown(ann)
    await bob.goto("/review?plugin=two&order=oldest")
    second = await shown(bob)
    assert first != second and {first, second} <= set(queues["two"])
    await ann.keyboard.press("a")  # ann moves on: never to the pair on bob's screen
    third = await shown(ann)
    assert third not in (first, second) and third in queues["two"]
    await ann.keyboard.press("j")  # nothing else is free
    await expect(ann.locator(".review-empty")).to_be_visible()
    await bob.keyboard.press("a")  # bob's next: ann's skipped pair came free when she moved on
    assert await shown(bob) == third


async def test_a_stale_save_shows_what_changed_instead_of_overwriting(
    screens: Screens, queues: dict[str, list[int]]
) -> None:
    [pair_id] = queues["stale"]
    page = await screens.signed_in("browser-ann")
    await page.goto("/review?plugin=stale")
    await on_pair(page, pair_id)
    await pairs.change_pair(pair_id, PairPatch(version=1, breed="beagle"), "browser-bob", "api")  # meanwhile
    await page.keyboard.press("a")
    conflict = page.locator("#review-conflict .conflict")
    await expect(conflict).to_contain_text("Not saved")
    await expect(conflict).to_contain_text("browser-bob")
    await expect(conflict.locator("tbody tr")).to_have_count(1)
    await expect(conflict.locator("tbody")).to_contain_text("breed")
    assert (await pairs.get_pair(pair_id)).status == "analysed"
    await page.click("#review-conflict [data-action=reload]")
    await expect(page.locator("#breed-current")).to_have_text("Beagle")
    await page.keyboard.press("a")
    await expect(page.locator(".review-empty")).to_be_visible()
    got = await pairs.get_pair(pair_id)
    assert (got.status, got.breed, got.version) == ("accepted", "Beagle", 3)


async def test_bulk_accept_of_a_shift_click_range_and_its_undo(screens: Screens, queues: dict[str, list[int]]) -> None:
    ids = queues["bulk"]
    page = await screens.signed_in("browser-ann")
    await page.goto("/review/bulk?plugin=bulk")
    cards = page.locator(".bulk-card")
    await expect(cards).to_have_count(5)  # newest first
    await cards.nth(0).click()
    await cards.nth(3).click(modifiers=["Shift"])
    await expect(page.locator("#bulk-count")).to_have_text("4 selected")
    await page.keyboard.press("Shift+ArrowRight")  # the keyboard extends the range to the fifth
    await expect(page.locator("#bulk-count")).to_have_text("5 selected")
    await page.keyboard.press("x")  # and takes the fifth out again
    await expect(page.locator("#bulk-count")).to_have_text("4 selected")
    await page.click("[data-bulk=accept]")
    await expect(page.locator("#bulk-result")).to_contain_text("4 pairs changed")
    chosen = sorted(ids, reverse=True)[:4]
    assert {i: (await pairs.get_pair(i)).status for i in ids} == {
        i: "accepted" if i in chosen else "analysed" for i in ids
    }
    batches = {h.batch for i in chosen for h in await pairs.history(i) if h.field == "status"}
    assert len(batches) == 1 and None not in batches
    await page.click("#bulk-result [data-batch]")
    await expect(page.locator("#bulk-result")).to_contain_text("Undone: 4 pairs")
    assert {(await pairs.get_pair(i)).status for i in ids} == {"analysed"}


async def test_the_dashboard_draws_its_charts_and_a_bar_opens_its_list(
    screens: Screens, queues: dict[str, list[int]]
) -> None:
    page = await screens.signed_in("browser-bob")
    await page.goto("/")
    await expect(page.locator("h1")).to_have_text("Dashboard")
    status_chart = page.locator("figure[data-chart='Pairs by status'] svg")
    await expect(status_chart.locator("rect.bar").first).to_be_visible()
    await expect(page.locator("figure[data-chart='Images by source plugin'] a.bar-link")).to_have_count(4)
    analysed = status_chart.locator("a.bar-link", has_text="analysed")
    counted = int(await analysed.locator("text.value").text_content() or 0)
    await analysed.locator("rect").click()
    await expect(page).to_have_url(f"{screens.url}/pairs?status=analysed")
    await expect(page.locator(".counts a.current")).to_have_text(f"analysed ({counted})")
