"""Queries (phase 1): the API, de-duplication, and generation by a real GGUF model or templates."""

from __future__ import annotations

from pathlib import Path

import msgspec
from litestar.testing import AsyncTestClient

from furrsight.queries.dedup import normalise
from furrsight.queries.llm import find_llm
from furrsight.queries.service import GENERATE_KIND, list_queries, run_generate
from furrsight.queries.tables import Query
from furrsight.settings import Settings
from tests.conftest import WorkerProcess, wait_for_job
from tests.sites import run_inline
from tests.tiny_models import make_tiny_gguf


def test_near_identical_wordings_fold_together() -> None:
    assert normalise("Poodle  teddy-bear cut, before & after!") == normalise("poodle teddy bear cuts before after")
    assert normalise("The Poodle teddy bear cut before and after") == normalise("poodle teddy bear cut before after")
    assert normalise("poodle bath") != normalise("poodle haircut")


async def test_queries_api_adds_lists_refuses_duplicates_and_toggles(client: AsyncTestClient) -> None:
    made = await client.post(
        "/api/v1/queries", json={"text": "Bichon frise   de-matting before after", "breed": "bichon"}
    )
    assert made.status_code == 201, made.text
    query = made.json()
    assert query["origin"] == "manual" and query["enabled"] and query["text"] == "Bichon frise de-matting before after"
    again = await client.post("/api/v1/queries", json={"text": "bichon frise de matting before & after"})
    assert again.status_code == 409 and "exists already" in again.json()["error"]
    empty = await client.post("/api/v1/queries", json={"text": ""})
    assert empty.status_code == 400
    off = await client.patch(f"/api/v1/queries/{query['id']}", json={"enabled": False})
    assert off.json()["enabled"] is False
    listed = (await client.get("/api/v1/queries", params={"enabled": "false"})).json()
    assert query["id"] in [q["id"] for q in listed] and "images" in listed[0]
    assert (await client.get("/queries")).status_code == 200


async def test_generate_api_answers_202_validates_and_the_job_writes_the_queries(
    client: AsyncTestClient, gpu_worker: WorkerProcess
) -> None:
    bad = await client.post("/api/v1/queries/generate", json={"breeds": [], "services": ["bath"]})
    assert bad.status_code == 400 and "breeds" in str(bad.json().get("detail"))
    ok = await client.post("/api/v1/queries/generate", json={"breeds": ["akita"], "services": ["bath"], "count": 2})
    assert ok.status_code == 202 and ok.json()["kind"] == GENERATE_KIND
    job = await wait_for_job(client, ok.json()["id"])
    assert job["status"] == "succeeded", job
    # no LLM in the test data directory: the template generator wrote two wordings, which fold
    # into one query (the same words in another order)
    assert job["counters"] == {"template": 1, "generated": 2, "new": 1, "duplicate": 1}
    akita = [(q["text"], q["origin"]) for q in (await client.get("/api/v1/queries")).json() if q["breed"] == "akita"]
    assert akita == [("akita bath before and after", "template")]


async def test_without_an_llm_the_template_generator_runs_and_says_so(migrated: Settings) -> None:
    params = {"breeds": ["whippet", "Whippet"], "services": ["nail trim"], "languages": ["en", "de"], "count": 6}
    job = await run_inline(migrated, params, run_generate, kind=GENERATE_KIND)
    assert job.status == "succeeded", job
    assert job.counters["template"] == 1 and job.counters["generated"] == 6
    # Whippet = whippet, and "whippet nail trim before and after" = "whippet before and after nail
    # trim": one new query per language
    assert (job.counters["new"], job.counters["duplicate"]) == (2, 4)
    log = Path(job.params and migrated.data_path / "logs" / "jobs" / f"{job.id}.log").read_text()
    assert "no LLM installed" in log
    stored = [q for q in await list_queries() if q.breed in ("whippet", "Whippet")]
    assert {q.origin for q in stored} == {"template"} and {q.language for q in stored} == {"en", "de"}


async def test_a_tiny_gguf_model_generates_queries_through_llama_cpp(migrated: Settings, tmp_path: Path) -> None:
    folder = migrated.data_path / "models-test" / "tiny-llm"
    folder.mkdir(parents=True, exist_ok=True)
    model = make_tiny_gguf(folder / "tiny.gguf", seed=7)
    (folder / "manifest.toml").write_text('name = "tiny-llm"\ntask = "llm"\nruntime = "gguf"\n')
    settings = msgspec.structs.replace(migrated, data_dir=str(tmp_path))  # no models there
    assert find_llm(settings) is None
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny-llm").symlink_to(folder)
    assert find_llm(settings).resolve() == model.resolve()  # type: ignore[union-attr]
    by_path = msgspec.structs.replace(
        migrated, queries=msgspec.structs.replace(migrated.queries, llm_model_path=str(model))
    )
    assert find_llm(by_path) == model
    before = await Query.count().where(Query.origin == "llm")
    params = {"breeds": ["samoyed"], "services": ["de-shedding", "bath"], "languages": ["en"], "count": 4}
    job = await run_inline(settings, params, run_generate, kind=GENERATE_KIND)  # finds the installed model
    assert job.status == "succeeded", job
    assert "template" not in job.counters
    assert job.counters["generated"] >= 1 and job.counters["new"] >= 1
    assert job.counters["generated"] == job.counters["new"] + job.counters["duplicate"]
    stored = await Query.select().where(Query.origin == "llm")
    assert len(stored) - before == job.counters["new"]
    assert len({q["norm"] for q in stored}) == len(stored)  # de-duplicated
    assert all(q["breed"] == "samoyed" or q["breed"] is None for q in stored[-job.counters["new"] :])
