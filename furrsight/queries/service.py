"""Search queries: list, add, enable/disable, and the generate job (LLM, else templates)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from dramatiq import Broker

from furrsight.db.piccolo_conf import DATABASE
from furrsight.images.service import images_per_query
from furrsight.jobs.runner import JobContext
from furrsight.jobs.schemas import JobOut
from furrsight.jobs.service import submit
from furrsight.queries.dedup import clean, normalise
from furrsight.queries.llm import ChatJSON, LlamaCppChat, LLMError, find_llm
from furrsight.queries.schemas import GenerateRequest, QueryIn, QueryOut
from furrsight.queries.tables import Query
from furrsight.queries.templates import template_queries
from furrsight.settings import Settings

GENERATE_KIND = "queries.generate"
PER_CALL = 5  # queries asked of the model in one answer


async def start_generate(broker: Broker, settings: Settings, request: GenerateRequest, creator: str | None) -> JobOut:
    """The one way to start a query-generation job (routes, schedules)."""
    params = {"breeds": request.breeds, "services": request.services, "languages": request.languages,
              "count": request.count}  # fmt: skip
    return await submit(broker, settings.data_path, GENERATE_KIND, params, creator)


class DuplicateQuery(ValueError):
    """The same query (after folding case, spacing and wording) exists already."""


async def list_queries(enabled: bool | None = None) -> list[QueryOut]:
    query = Query.select().order_by(Query.id, ascending=False)
    if enabled is not None:
        query = query.where(Query.enabled == enabled)
    rows = await query
    counts = await images_per_query()
    return [msgspec.convert({**r, "images": counts.get(r["text"], 0)}, QueryOut) for r in rows]


async def enabled_queries() -> list[str]:
    return [r["text"] for r in await Query.select(Query.text).where(Query.enabled == True).order_by(Query.id)]  # noqa: E712


async def add_queries(items: list[dict[str, Any]], origin: str) -> tuple[int, int]:
    """Store new queries, skipping near-duplicates (of each other and of stored ones): (added, dupes)."""
    added = dupes = 0
    async with DATABASE.write_transaction():
        for item in items:
            text = clean(str(item["text"]))
            norm = normalise(text)
            if not norm or await Query.exists().where(Query.norm == norm):
                dupes += 1
                continue
            await Query(text=text, norm=norm, breed=item.get("breed"), service=item.get("service"),
                        language=item.get("language") or "en", origin=origin,
                        enabled=item.get("enabled", True)).save()  # fmt: skip
            added += 1
    return added, dupes


async def create_query(data: QueryIn) -> QueryOut:
    added, _ = await add_queries([msgspec.to_builtins(data)], "manual")
    if not added:
        raise DuplicateQuery(f"a query like {data.text!r} exists already")
    row = await Query.select().where(Query.norm == normalise(clean(data.text))).first()
    return msgspec.convert(row, QueryOut)


async def set_enabled(query_id: int, enabled: bool) -> QueryOut | None:
    await Query.update({Query.enabled: enabled}).where(Query.id == query_id)
    row = await Query.select().where(Query.id == query_id).first()
    return msgspec.convert(row, QueryOut) if row else None


# -- generation ----------------------------------------------------------------------------------
def schema(n: int) -> dict[str, Any]:
    text = {"type": "string", "minLength": 8, "maxLength": 80}
    return {"type": "object", "properties": {"queries": {"type": "array", "items": text, "minItems": 1, "maxItems": n}},
            "required": ["queries"]}  # fmt: skip


def messages(breed: str, service: str, language: str, n: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You write image-search queries that find before-and-after photos of dog "
                                      "grooming. Answer with JSON only."},
        {"role": "user", "content": f"Write {n} varied, creative search queries in language '{language}' for "
                                    f"before/after photos of a {breed} getting a {service}. Vary wording, "
                                    "include what owners and groomers really type."},
    ]  # fmt: skip


async def llm_queries(chat: ChatJSON, request: GenerateRequest, ctx: JobContext) -> list[dict[str, Any]]:
    combos = [(b, s, lang) for lang in request.languages for b in request.breeds for s in request.services]
    per = max(1, min(PER_CALL, -(-request.count // len(combos))))
    out: list[dict[str, Any]] = []
    await ctx.set_total(len(combos))
    for breed, service, language in combos:
        if len(out) >= request.count:
            break
        try:
            answer = await asyncio.to_thread(chat.chat_json, messages(breed, service, language, per), schema(per))
            texts = [t for t in answer.get("queries", []) if isinstance(t, str) and clean(t)]
        except LLMError as exc:
            ctx.count("llm_failed")
            ctx.log(f"{breed} / {service} / {language}: {exc}")
            texts = []
        out.extend({"text": t, "breed": breed, "service": service, "language": language} for t in texts[:per])
        await ctx.advance()
    return out[: request.count]


async def run_generate(ctx: JobContext, chat: ChatJSON | None = None) -> None:
    request = msgspec.convert(ctx.params, GenerateRequest)
    settings = ctx.settings
    if chat is None:
        path = find_llm(settings)
        if path is not None:
            ctx.log(f"asking the LLM {path.name} for queries")
            q = settings.queries
            chat = LlamaCppChat(path, q.llm_context, q.llm_max_tokens, q.llm_threads)
    if chat is not None:
        items, origin = await llm_queries(chat, request, ctx), "llm"
    else:
        ctx.log("no LLM installed (see `furrsight models`): the template generator writes the queries instead")
        ctx.count("template")
        items, origin = template_queries(request.breeds, request.services, request.languages, request.count), "template"
    added, dupes = await add_queries(items, origin)
    ctx.count("generated", len(items))
    ctx.count("new", added)
    ctx.count("duplicate", dupes)
    ctx.log(f"{origin}: {len(items)} queries written, {added} new, {dupes} duplicates dropped")
