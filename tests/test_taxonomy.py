"""The taxonomy: shipped data, seeding, the resolver, the API and the admin actions."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from furrsight.auth.tables import AuditEntry
from furrsight.search.breeds import breed_names
from furrsight.settings import Settings
from furrsight.taxonomy import service
from furrsight.taxonomy.data import shipped_breeds, shipped_services
from furrsight.taxonomy.resolver import Entry, Resolver

GROOMER_BREEDS = ["Bichon Frise", "Havanese", "Coton de Tulear", "Cavapoo", "Cockapoo", "Maltipoo", "Goldendoodle",
                  "Labradoodle", "Bernedoodle", "Portuguese Water Dog", "Shih Tzu mix", "Mixed breed"]  # fmt: skip


def test_the_shipped_vocabulary_is_complete_and_consistent() -> None:
    breeds, services = shipped_breeds(), shipped_services()
    assert len(breeds) >= 200 and len(services) >= 15
    names = {b["name"] for b in breeds}
    assert set(GROOMER_BREEDS) <= names
    assert len({b["key"] for b in breeds}) == len(breeds) and len(names) == len(breeds)
    assert {b["size"] for b in breeds} == {"toy", "small", "medium", "large", "giant"}
    assert {b["coat"] for b in breeds} == {"curly", "double", "wire", "silky", "smooth", "hairless", "combination"}
    assert {b["fci_group"] for b in breeds} - {None} == set(range(1, 11))
    assert all(s["description"].endswith(".") and len(s["description"]) > 30 for s in services)
    resolver = Resolver(Entry(i, b["name"], tuple(b["aliases"])) for i, b in enumerate(breeds))
    # each alias names one breed only (an alias shared by two breeds would resolve arbitrarily)
    owners: dict[str, set[str]] = {}
    for b in breeds:
        for phrase in (b["name"], *b["aliases"]):
            owners.setdefault(phrase.casefold(), set()).add(b["name"])
    assert {p: o for p, o in owners.items() if len(o) > 1} == {}
    assert resolver.resolve("Shih Tzu").name == "Shih Tzu"


def test_every_class_of_the_default_model_maps_to_a_taxonomy_breed() -> None:
    names = {b["name"] for b in shipped_breeds()}
    assert len(breed_names()) == 118
    assert sorted(set(breed_names()) - names) == []
    assert breed_names().count("Poodle") == 3  # toy, miniature and standard poodle are one breed


def test_the_resolver_maps_aliases_languages_plurals_and_near_misses() -> None:
    resolver = Resolver(Entry(i, b["name"], tuple(b["aliases"])) for i, b in enumerate(shipped_breeds()))
    expected = {
        "Zwergschnauzer": "Miniature Schnauzer", "caniche": "Poodle", "toy poodles": "Poodle",
        "GOLDEN RETRIEVERS": "Golden Retriever", "bichon frisé": "Bichon Frise", "Yorkie": "Yorkshire Terrier",
        "Deutscher Schäferhund": "German Shepherd Dog", "goldendodle": "Goldendoodle",
        "bernese mountian dog": "Bernese Mountain Dog", "poodle toy": "Poodle",
        "westies": "West Highland White Terrier",
    }  # fmt: skip
    assert {text: resolver.resolve(text).name for text in expected} == expected
    near = resolver.resolve("goldendodle")
    assert near.matched == "Goldendoodle" and 86 <= near.score < 100
    for vague in ("cat", "eagle", "a dog", "terrier", "", "bird on a fence"):
        assert resolver.resolve(vague).id is None, vague
    found = resolver.find_in("Our goldendoodle Max after his teddy bear cut, with a Yorkie friend")
    assert [r.name for r in found] == ["Goldendoodle", "Yorkshire Terrier"]
    services = Resolver(Entry(i, s["name"], tuple(s["aliases"])) for i, s in enumerate(shipped_services()))
    assert [r.name for r in services.find_in("shih tzu teddy bear cut before and after, nails done")] == [
        "Puppy / teddy-bear cut", "Nail trim"]  # fmt: skip
    assert (
        services.resolve("de-shedding").name == "De-shedding" and services.resolve("baño").name == "Bath and blow-dry"
    )


async def test_migrate_seeds_once_and_keeps_admin_edits(migrated: Settings) -> None:
    breeds = await service.list_entries("breeds")
    assert len(breeds) >= len(shipped_breeds()) and len(await service.list_entries("services")) >= 19
    assert await service.seed() == {"breeds": 0, "services": 0}


async def test_api_lists_breeds_and_services_with_their_fields(viewer_client: AsyncTestClient) -> None:
    breeds = (await viewer_client.get("/api/v1/taxonomy/breeds")).json()
    poodle = next(b for b in breeds if b["key"] == "poodle")
    assert poodle["name"] == "Poodle" and poodle["size"] == "medium" and poodle["coat"] == "curly"
    assert poodle["fci_group"] == 9 and "caniche" in poodle["aliases"] and poodle["retired"] is False
    services = (await viewer_client.get("/api/v1/taxonomy/services")).json()
    assert services[0]["key"] == "bath" and services[0]["position"] == 0 and services[0]["description"]
    hit = (await viewer_client.get("/api/v1/taxonomy/breeds/resolve", params={"text": "Zwergschnauzer"})).json()
    assert hit["name"] == "Miniature Schnauzer" and hit["score"] == 100.0
    miss = (await viewer_client.get("/api/v1/taxonomy/breeds/resolve", params={"text": "eagle"})).json()
    assert miss["id"] is None and miss["name"] is None
    assert (await viewer_client.get("/api/v1/taxonomy/colours/resolve", params={"text": "x"})).status_code == 404
    assert (await viewer_client.get("/api/v1/taxonomy/breeds/resolve", params={"text": ""})).status_code == 400
    refused = await viewer_client.post("/api/v1/taxonomy/breeds", json={"name": "Viewer Hound"})
    assert refused.status_code == 403


async def test_admin_adds_renames_merges_and_retires_with_audit(client: AsyncTestClient) -> None:
    new = {"name": "Taxonomy Test Hound", "aliases": ["tth"], "size": "large", "coat": "wire", "fci_group": 6}
    made = await client.post("/api/v1/taxonomy/breeds", json=new)
    assert made.status_code == 201, made.text
    hound = made.json()
    assert (await client.post("/api/v1/taxonomy/breeds", json={"name": "taxonomy test hound"})).status_code == 409
    assert (await client.post("/api/v1/taxonomy/breeds", json={"name": "X", "size": "huge"})).status_code == 400
    renamed = await client.patch(f"/api/v1/taxonomy/breeds/{hound['id']}", json={"name": "Taxonomy Test Hound II"})
    assert renamed.json()["name"] == "Taxonomy Test Hound II" and "Taxonomy Test Hound" in renamed.json()["aliases"]
    other = (await client.post("/api/v1/taxonomy/breeds", json={"name": "Taxonomy Test Beagle"})).json()
    merged = await client.post(f"/api/v1/taxonomy/breeds/{other['id']}/merge", json={"into": hound["id"]})
    assert merged.status_code == 200 and merged.json() == {
        "merged": other["id"],
        "into": hound["id"],
        "labels_moved": 0,
    }
    kept = (await client.get("/api/v1/taxonomy/breeds/resolve", params={"text": "Taxonomy Test Beagle"})).json()
    assert kept["id"] == hound["id"]  # the merged name lives on as an alias of the kept entry
    again = await client.post(f"/api/v1/taxonomy/breeds/{other['id']}/merge", json={"into": hound["id"]})
    assert again.status_code == 409 and "already merged" in again.json()["error"]
    assert (
        await client.post(f"/api/v1/taxonomy/breeds/{hound['id']}/merge", json={"into": hound["id"]})
    ).status_code == 409
    assert (await client.patch(f"/api/v1/taxonomy/breeds/{2**53 - 1}", json={"name": "Nope"})).status_code == 404
    retired = await client.patch(f"/api/v1/taxonomy/breeds/{hound['id']}", json={"retired": True})
    assert retired.json()["retired"] is True
    active = {b["id"] for b in (await client.get("/api/v1/taxonomy/breeds")).json()}
    assert hound["id"] not in active and other["id"] not in active
    actions = [r["action"] for r in await AuditEntry.select(AuditEntry.action).where(
        AuditEntry.target.like("Taxonomy Test%"))]  # fmt: skip
    assert actions.count("taxonomy.breed.add") == 2 and actions.count("taxonomy.breed.merge") == 1
    assert actions.count("taxonomy.breed.change") == 2


async def test_merge_hooks_move_labels(migrated: Settings) -> None:
    calls: list[tuple[str, int, int]] = []

    async def hook(kind: str, source: int, into: int) -> int:
        calls.append((kind, source, into))
        return 7

    service.on_merge(hook)
    try:
        a = await service.add_entry("services", service.EntryIn(name="Hook Test Spa"), "test")
        b = await service.add_entry("services", service.EntryIn(name="Hook Test Spa Day"), "test")
        done = await service.merge("services", b.id, a.id, "test")
    finally:
        service._merge_hooks.remove(hook)
    assert done["labels_moved"] == 7 and calls == [("services", b.id, a.id)]


async def test_the_taxonomy_page_shows_entries_and_admin_forms(
    client: AsyncTestClient, viewer_client: AsyncTestClient
) -> None:
    page = await client.get("/taxonomy")
    assert page.status_code == 200 and "Zwergschnauzer" in page.text and "Add a breed" in page.text
    viewer_page = await viewer_client.get("/taxonomy")
    assert viewer_page.status_code == 200 and "Add a breed" not in viewer_page.text


async def test_admin_page_forms_add_rename_and_refuse_in_words(client: AsyncTestClient) -> None:
    added = await client.post("/taxonomy/services", data={"name": "Form Test Facial", "description": "Face wash."})
    assert added.status_code == 200 and "added Form Test Facial" in added.text  # after the 303 to the page
    entry = next(s for s in (await client.get("/api/v1/taxonomy/services")).json() if s["name"] == "Form Test Facial")
    renamed = await client.post(f"/taxonomy/services/{entry['id']}", data={"name": "Form Test Blueberry Facial"})
    assert renamed.status_code == 200 and "saved Form Test Blueberry Facial" in renamed.text
    taken = await client.post("/taxonomy/services", data={"name": "Form Test Blueberry Facial"})
    assert taken.status_code == 409 and "exists already" in taken.text
    bad = await client.post("/taxonomy/breeds", data={"name": "Form Test Dog", "size": "enormous"})
    assert bad.status_code == 400 and "not saved" in bad.text
    assert (await client.post("/taxonomy/colours", data={"name": "Teal"})).status_code == 404
