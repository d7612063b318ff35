"""The analysis job (``pairs.analyse``, GPU queue): each selected pair gets a verdict and its labels.

With a vision-language model installed (``pairs.vlm_model``, else an installed model whose task is
``vlm``), both images go to it in one prompt (``vlm.py``); without one, the offline rules judge the
pair from the default model's breed tags and the embeddings (``offline.py``). The model is held by
the process's residency manager (one large model on the GPU at a time). A pair a verdict says is
not a dog, not the same dog or not a grooming before/after is ``rejected`` with ``source=model``
and the reason (a person can undo it); a VLM that gives no usable answer twice marks the pair
``analysis_failed`` with the reason in words. Labels a person set are never overwritten.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dramatiq import Broker

from furrsight.images import groups
from furrsight.inference.gguf_runtime import GGUFChat
from furrsight.inference.install import ModelStore
from furrsight.inference.manifest import ModelError
from furrsight.inference.residency import RESIDENCY
from furrsight.jobs.runner import JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import submit
from furrsight.pairs import model_labels
from furrsight.pairs.offline import ImageFacts, OfflineThresholds, analyse_offline
from furrsight.pairs.prompting import default_prompt_version
from furrsight.pairs.tables import Pair
from furrsight.pairs.verdict import AnalysisFailed, LabelScore, Order, Verdict
from furrsight.pairs.vlm import analyse_with_vlm
from furrsight.search import facts as search_facts
from furrsight.settings import Settings
from furrsight.store import FileStore
from furrsight.taxonomy import service as taxonomy

ANALYSE_KIND = "pairs.analyse"
BATCH = 64


async def start_analyse(broker: Broker, settings: Settings, creator: str | None, **params: Any) -> JobOut:
    """The one way to start an analysis job: ``status`` (default: candidates), ``origin``, ``ids``,
    ``prompt_version``, ``limit``."""
    params.setdefault("status", ["candidate"])
    return await submit(broker, settings.data_path, ANALYSE_KIND, params, creator)


@dataclass
class VLM:
    name: str
    model: Path
    mmproj: Path


def find_vlm(settings: Settings) -> VLM | None:
    """The installed VLM to use: ``pairs.vlm_model``, else the first installed ``vlm`` model."""
    store = ModelStore(settings.data_path / "models")
    wanted = settings.pairs.vlm_model
    for status in store.statuses():
        if status.status != "installed" or (wanted and status.name != wanted) or (not wanted and status.task != "vlm"):
            continue
        manifest = store.manifest(status.name)
        model, mmproj = manifest.file("model"), manifest.file("mmproj")
        if manifest.task == "vlm" and model and mmproj:
            return VLM(status.name, store.file_path(manifest, model), store.file_path(manifest, mmproj))
    if wanted:
        raise ModelError(f"pairs.vlm_model is {wanted!r}, which is not an installed vision-language model")
    return None


async def _selected(params: dict[str, Any]) -> list[int]:
    query = Pair.select(Pair.id).order_by(Pair.id)
    query = query.where(Pair.status.is_in(list(params.get("status") or ["candidate"])))
    if params.get("origin"):
        query = query.where(Pair.origin == params["origin"])
    if params.get("ids"):
        query = query.where(Pair.id.is_in(list(params["ids"])))
    if params.get("limit"):
        query = query.limit(int(params["limit"]))
    return [r["id"] for r in await query]


class Analyser:
    """Judges pairs one batch at a time: the offline rules, or the VLM in a worker thread."""

    def __init__(self, ctx: JobContext, vlm: VLM | None, breeds: list[str], services: list[str]) -> None:
        self.ctx, self.vlm, self.breeds, self.services = ctx, vlm, breeds, services
        s = ctx.settings
        self.prompt_version = ctx.params.get("prompt_version") or s.pairs.prompt_version or default_prompt_version()
        self.thresholds = OfflineThresholds(min_dog_probability=s.pairs.min_dog_probability,
                                            same_dog_reject_below=s.pairs.same_dog_reject_below)  # fmt: skip
        self.store = FileStore(s.data_path)

    def chat(self) -> GGUFChat:
        assert self.vlm is not None
        vlm, r = self.vlm, RESIDENCY
        load = lambda: GGUFChat(vlm.model, vlm.mmproj, n_ctx=4096, n_gpu_layers=r.gpu_layers)  # noqa: E731
        return r.acquire(f"vlm:{vlm.model}", load, large=True)  # type: ignore[no-any-return]

    async def judge(self, rows: list[dict[str, Any]]) -> list[Verdict | AnalysisFailed]:
        ids = sorted({r["before"] for r in rows} | {r["after"] for r in rows})
        if self.vlm is not None:
            shas = await groups.files(ids)
            out: list[Verdict | AnalysisFailed] = []
            for r in rows:
                before = await self.store.read(shas[r["before"]])
                after = await self.store.read(shas[r["after"]])
                try:
                    verdict = await asyncio.to_thread(
                        analyse_with_vlm,
                        self.chat(),
                        before,
                        after,
                        self.breeds,
                        self.services,
                        self.prompt_version,
                        model=self.vlm.name,
                    )
                    out.append(verdict)
                except AnalysisFailed as exc:
                    out.append(exc)
            return out
        tags = await search_facts.breed_facts(ids)
        vectors = await search_facts.embeddings(self.ctx.settings, ids)
        return [self._offline(r, tags, vectors) for r in rows]

    def _offline(self, row: dict[str, Any], tags: dict[int, Any], vectors: dict[int, Any]) -> Verdict:
        def facts(image_id: int) -> ImageFacts:
            tag = tags.get(image_id)
            if tag is None:  # not tagged (a model that does not classify): nothing known, not "no dog"
                return ImageFacts(top=[], dog_probability=1.0)
            top = [LabelScore(tag.breed, tag.confidence)] if tag.breed else []
            return ImageFacts(top=top, dog_probability=tag.dog_probability)

        a, b = vectors.get(row["before"]), vectors.get(row["after"])
        score = float(a @ b) if a is not None and b is not None else 1.0
        hint: tuple[Order, float] | None = (
            ("first", float(row["order_confidence"])) if row["order_confidence"] is not None else None
        )
        model = next((t.model for t in tags.values()), self.ctx.settings.search.model)
        verdict = analyse_offline(facts(row["before"]), facts(row["after"]), score, hint, self.thresholds, model=model)
        if a is None or b is None:
            verdict.unavailable.append("same_dog")
            verdict.same_dog, verdict.same_dog_confidence = None, 0.0
        return verdict


async def run_analyse(ctx: JobContext) -> None:
    ids = await _selected(ctx.params)
    await ctx.set_total(len(ids))
    vlm = await asyncio.to_thread(find_vlm, ctx.settings)
    breeds = [b.name for b in await taxonomy.list_entries("breeds")]
    services = [s.name for s in await taxonomy.list_entries("services")]
    analyser = Analyser(ctx, vlm, breeds, services)
    if vlm:
        ctx.log(f"{len(ids)} pairs; vision-language model {vlm.name}, prompt {analyser.prompt_version}")
    else:
        ctx.log(f"{len(ids)} pairs; no vision-language model installed: the default model's breed tags and the "
                "embeddings judge them (services, caption and whether it is a grooming before/after are left to "
                "reviewers)")  # fmt: skip
    resolvers = (await taxonomy.resolver("breeds"), await taxonomy.resolver("services"))
    unavailable: set[str] = set()
    for lo in range(0, len(ids), BATCH):
        await ctx.check_cancelled()
        rows = await Pair.select().where(Pair.id.is_in(ids[lo : lo + BATCH])).order_by(Pair.id)
        for row, verdict in zip(rows, await analyser.judge(rows), strict=True):
            if isinstance(verdict, AnalysisFailed):
                await model_labels.record_failure(row["id"], verdict.reason, verdict.raw, vlm.name if vlm else "")
                ctx.count("analysis_failed")
                ctx.log(f"pair {row['id']}: {verdict.reason}")
                continue
            unavailable.update(verdict.unavailable)
            status = await model_labels.apply_verdict(row["id"], verdict, *resolvers)
            ctx.count(f"rejected:{verdict.reject_code}" if status == "rejected" else status)
        await ctx.advance(len(rows))
    if unavailable:
        ctx.log("labels not given: " + ", ".join(sorted(unavailable)))
