"""Review through the API: the queue's leases and order, decisions with history and undo, stale
saves, bulk batches undone as one, the reviewers' counts and the dashboard.

This module works in its own data directory, so its counts are exact."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from furrsight.jobs.broker import valkey_client
from furrsight.pairs import service as pairs
from furrsight.review import service as review
from furrsight.settings import Settings
from tests.conftest import app_client, own_data, user_with_token
from tests.review_data import seed_pairs


@pytest.fixture(scope="module")
async def own(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    review = msgspec.structs.replace(migrated.review, dashboard_cache_s=0)
    folder = tmp_path_factory.mktemp("review-data")
    async with own_data(folder, migrated, broker_namespace="review-api", review=review) as settings:
        yield settings


@pytest.fixture(scope="module")
async def seeded(own: Settings) -> list[int]:
    return await seed_pairs(own, 8, 81_000)


@pytest.fixture(scope="module")
async def ann(own: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    _, token = await user_with_token("curator", "review-ann")
    async with app_client(own, token) as client:
        yield client


@pytest.fixture(scope="module")
async def bob(own: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    _, token = await user_with_token("curator", "review-bob")
    async with app_client(own, token) as client:
        yield client


async def test_two_reviewers_get_different_pairs_least_confident_first(
    seeded: list[int], ann: AsyncTestClient, bob: AsyncTestClient
) -> None:
    first = await ann.post("/api/v1/review/next", json={"plugin": "test_review"})
    assert first.status_code == 200, first.text
    second = await bob.post("/api/v1/review/next", json={"plugin": "test_review"})
    assert (first.json()["id"], second.json()["id"]) == (seeded[0], seeded[1])
    again = await ann.post("/api/v1/review/next", json={"plugin": "test_review", "exclude": [seeded[0]]})
    assert again.json()["id"] == seeded[2]  # ann let pair 0 go by moving on; bob still holds pair 1
    taken = await bob.post(f"/api/v1/review/pairs/{seeded[2]}", json={"version": 1, "status": "accepted"})
    assert taken.status_code == 409 and taken.json()["error"] == f"pair {seeded[2]} is being reviewed by review-ann"
    oldest = await ann.post("/api/v1/review/next", json={"plugin": "test_review", "order": "oldest"})
    assert oldest.json()["id"] == seeded[0]
    bad = await ann.post("/api/v1/review/next", json={"status": "maybe"})
    assert bad.status_code == 400 and "status: one of" in bad.json()["error"]


async def test_an_abandoned_lease_expires_and_the_pair_comes_back(own: Settings, seeded: list[int]) -> None:
    client = valkey_client(own)
    try:
        short = review.Leases(client, "review-expiry", ttl=1)
        where = pairs.PairFilter(plugin="test_review")
        held = await review.next_pair(short, "carol", where, "confidence", [])
        other = await review.next_pair(short, "dave", where, "confidence", [])
        assert held and other and held.id != other.id
        deadline = time.monotonic() + 10
        while await short.holder(held.id) is not None:  # carol walked away: her lease runs out
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        back = await review.next_pair(short, "erin", where, "confidence", [])
        assert back and back.id == held.id
    finally:
        await client.aclose()


async def test_a_decision_is_history_an_undo_takes_it_back_and_a_stale_save_is_refused(
    seeded: list[int], ann: AsyncTestClient, bob: AsyncTestClient
) -> None:
    pair_id = seeded[3]
    await ann.get(f"/review/pairs/{pair_id}")  # on ann's screen
    rejected = await ann.post(
        f"/api/v1/review/pairs/{pair_id}",
        json={"version": 1, "status": "rejected", "reject_reason": "other", "note": "a cat"},
    )
    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert (body["status"], body["reject_reason"], body["note"], body["version"]) == ("rejected", "other", "a cat", 2)
    history = (await ann.get(f"/api/v1/pairs/{pair_id}/history")).json()
    assert [(h["user"], h["field"], h["old"], h["new"], h["via"]) for h in history[1:]] == [
        ("review-ann", "note", None, "a cat", "review"),
        ("review-ann", "status", "analysed", "rejected", "review"),
        ("review-ann", "reject_reason", None, "other", "review"),
    ]
    assert set(history[1]) >= {"at", "user", "field", "old", "new", "via"}
    stale = await bob.post(f"/api/v1/review/pairs/{pair_id}", json={"version": 1, "status": "accepted"})
    assert stale.status_code == 409
    assert stale.json()["current"]["status"] == "rejected"
    assert {c["field"] for c in stale.json()["changes"]} == {"note", "status", "reject_reason"}
    undone = await ann.post(f"/api/v1/review/pairs/{pair_id}/undo", json={"version": 2})
    assert undone.status_code == 200, undone.text
    body = undone.json()
    assert (body["status"], body["reject_reason"], body["note"], body["version"]) == ("analysed", None, None, 3)
    assert (await ann.post(f"/api/v1/review/pairs/{pair_id}/undo", json={"version": 2})).status_code == 409
    audit = (await _admin_audit(ann, "review.reject"))[0]
    assert (audit["actor"], audit["target"]) == ("review-ann", f"pair {pair_id}")


async def _admin_audit(client: AsyncTestClient, action: str) -> list[dict]:  # type: ignore[type-arg]
    from furrsight.auth import audit

    page = await audit.list_entries(action=action)
    return [msgspec.to_builtins(e) for e in page.items]


async def test_a_bulk_action_is_one_batch_and_undone_as_one(seeded: list[int], ann: AsyncTestClient) -> None:
    ids = seeded[4:8]
    done = await ann.post(
        "/api/v1/review/bulk", json={"ids": ids, "change": {"version": 1, "status": "accepted", "breed": "shih tzu"}}
    )
    assert done.status_code == 200, done.text
    result = done.json()
    assert (result["count"], result["unchanged"], result["missing"]) == (4, [], [])
    for pair_id in ids:
        got = (await ann.get(f"/api/v1/pairs/{pair_id}")).json()
        assert (got["status"], got["breed"], got["breed_source"]) == ("accepted", "Shih Tzu", "human")
    moved = await ann.post(f"/api/v1/review/pairs/{ids[0]}", json={"version": 2, "caption": "changed since"})
    assert moved.status_code == 200, moved.text
    undone = (await ann.post(f"/api/v1/review/bulk/{result['batch']}/undo")).json()
    assert (undone["count"], undone["conflicts"]) == (3, [ids[0]])
    for pair_id in ids[1:]:
        got = (await ann.get(f"/api/v1/pairs/{pair_id}")).json()
        assert (got["status"], got["breed"]) == ("analysed", "Poodle")
    no_reason = await ann.post("/api/v1/review/bulk", json={"ids": ids, "change": {"version": 1, "status": "rejected"}})
    assert no_reason.status_code == 400
    unknown = await ann.post(f"/api/v1/review/bulk/{pairs.new_batch()}/undo")
    assert unknown.status_code == 404


async def test_dashboard_and_reviewers_count_what_happened(own: Settings, tmp_path: Path) -> None:
    """On a data directory of its own (the dashboard counts everything there): three analysed
    pairs, one of them accepted by a reviewer who changed the model's breed and kept its order."""
    async with own_data(tmp_path / "data", own, broker_namespace="review-dash", review=own.review) as mine:
        seeded = await seed_pairs(mine, 3, 83_000, plugin="test_dashboard")
        _, token = await user_with_token("curator", "review-dana")
        async with app_client(mine, token) as dana:
            decided = await dana.post(
                f"/api/v1/review/pairs/{seeded[0]}", json={"version": 1, "status": "accepted", "breed": "shih tzu"}
            )
            assert decided.status_code == 200, decided.text
            board = (await dana.get("/api/v1/dashboard")).json()
            status = {b["label"]: (b["value"], b["href"]) for b in board["pairs"]["status"]}
            assert status["accepted"] == (1, "/pairs?status=accepted")
            assert status["analysed"][0] == 2
            assert {b["label"]: b["value"] for b in board["pairs"]["breed"]} == {"Shih Tzu": 1}
            assert {b["label"]: b["value"] for b in board["images"]["plugin"]} == {"test_dashboard": 6}
            [precision] = board["precision"]
            assert (precision["model"], precision["pairs"], precision["breed_kept"], precision["order_kept"]) == (
                "test-vlm",
                1,
                0,
                1,
            )
            home = await dana.get("/")
            assert home.status_code == 200 and 'href="/pairs?status=accepted"' in home.text
            people = await dana.get("/review/reviewers")
            assert "review-dana" in people.text


async def test_gallery_cards_and_image_pages_show_pairs_and_link_to_them(
    seeded: list[int], ann: AsyncTestClient
) -> None:
    pair = (await ann.get(f"/api/v1/pairs/{seeded[1]}")).json()
    gallery = await ann.get("/images?plugin=test_review&license=CC-BY-4.0")
    assert gallery.status_code == 200
    assert gallery.text.count('<a href="/images/') == 16 and f"pair {seeded[1]} · analysed" in gallery.text
    assert '<a href="/images/' not in (await ann.get("/images?plugin=elsewhere")).text
    image = await ann.get(f"/images/{pair['before_id']}")
    assert f'<a href="/pairs/{seeded[1]}">pair {seeded[1]}</a>' in image.text and "not tagged yet" in image.text


async def test_bad_filters_are_refused_in_words_and_a_pair_can_open_the_screen(
    seeded: list[int], ann: AsyncTestClient
) -> None:
    for url in ("/review?foo=1", "/review?min_confidence=high", "/review?status=maybe", "/review/bulk?order=sideways"):
        refused = await ann.get(url)
        assert refused.status_code == 400, (url, refused.status_code)
    assert "bad filter" in (await ann.get("/review?min_confidence=high")).text
    opened = await ann.get(f"/review?pair={seeded[0]}&plugin=test_review")
    assert opened.status_code == 200 and f'data-start="{seeded[0]}"' in opened.text
    assert f'href="/review?pair={seeded[0]}"' in (await ann.get(f"/pairs/{seeded[0]}")).text
