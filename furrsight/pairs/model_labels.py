"""What a model says about a pair: a verdict's labels written (human labels and decisions kept),
or the reason the model gave no usable answer. The analysis job calls these."""

from __future__ import annotations

from typing import Any

from furrsight.db.piccolo_conf import DATABASE
from furrsight.pairs.service import PairNotFound, as_json, now, set_services
from furrsight.pairs.tables import Pair, PairHistory, PairService


async def _write(pair_id: int, row: dict[str, Any], values: dict[str, Any], via: str, user: str | None = None) -> None:
    """Write the changed ``values`` of a pair (inside a write transaction) with a history row each."""
    changed = {k: v for k, v in values.items() if row.get(k) != v}
    shown = {k for k in changed if k not in ("analysis", "updated_at")}
    if not changed:
        return
    version = row["version"] + 1
    await Pair.update({**changed, "version": version, "updated_at": now()}).where(Pair.id == pair_id)  # type: ignore[arg-type,dict-item]
    rows = [PairHistory(pair=pair_id, user=user, field=k, old=as_json(row.get(k)), new=as_json(changed[k]), via=via,
                        version=version) for k in sorted(shown)]  # fmt: skip
    if rows:
        await PairHistory.insert(*rows)


def _confidence(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return round(min(known), 4) if known else None


async def apply_verdict(pair_id: int, verdict: Any, breeds: Any, services: Any) -> str:
    """Store a model's verdict (``pairs.verdict.Verdict``) on a pair; returns its status. Labels a
    person set stay; a pair a person decided keeps its status. ``breeds`` and ``services`` are the
    taxonomy's resolvers (the model's names are the taxonomy's, or close to them)."""
    async with DATABASE.write_transaction():
        row = await Pair.select().where(Pair.id == pair_id).first()
        if row is None:
            raise PairNotFound(f"pair {pair_id} does not exist")
        source = verdict.source
        values: dict[str, Any] = {
            "same_dog": verdict.same_dog, "same_dog_confidence": verdict.same_dog_confidence if verdict.same_dog
            is not None else None, "is_grooming": verdict.is_grooming_before_after, "model": verdict.model,
            "prompt_version": verdict.prompt_version, "reason": verdict.reject_reason,
            "analysis": as_json({"raw": verdict.raw, "model": verdict.model, "prompt_version": verdict.prompt_version,
                                 "unavailable": verdict.unavailable, "reject_code": verdict.reject_code}),
        }  # fmt: skip
        if row["breed_source"] != "human":
            breed = breeds.resolve(verdict.breed).id if verdict.breed else None
            values.update(breed_id=breed, breed_source=source if breed else None,
                          breed_confidence=verdict.breed_confidence if breed else None)  # fmt: skip
        if row["order_source"] != "human" and verdict.before is not None:
            if verdict.before == "second":
                values.update(before=row["after"], after=row["before"])
            values.update(order_source=source, order_confidence=verdict.order_confidence)
        if row["caption_source"] != "human" and verdict.caption:
            values.update(caption=verdict.caption, caption_source=source)
        labels = await PairService.select().where(PairService.pair == pair_id)
        if verdict.services and not any(label["source"] == "human" for label in labels):
            found = {services.resolve(s.name).id: s.confidence for s in verdict.services}
            found.pop(None, None)
            if set(found) != {label["service_id"] for label in labels}:
                await set_services(pair_id, set(found), source, found)
                values["services"] = sorted(found)  # history only (not a column)
        if row["reviewed_by"] is None:
            values["status"] = "rejected" if verdict.reject_code else "analysed"
            values["reject_reason"] = verdict.reject_code
        order_confidence = values.get("order_confidence", row["order_confidence"])
        breed_confidence = values.get("breed_confidence", row["breed_confidence"])
        values["confidence"] = _confidence(values["same_dog_confidence"], breed_confidence, order_confidence)
        services_changed = values.pop("services", None)
        await _write(pair_id, {**row, "services": None}, values, "model")
        if services_changed is not None:
            await PairHistory.insert(PairHistory(pair=pair_id, field="services", old=as_json(sorted(
                label["service_id"] for label in labels)), new=as_json(services_changed), via="model",
                version=row["version"] + 1))  # fmt: skip
        return str(values.get("status", row["status"]))


async def record_failure(pair_id: int, reason: str, raw: str, model: str) -> None:
    """The model gave no usable answer: ``analysis_failed`` with the reason (a decided pair keeps its status)."""
    async with DATABASE.write_transaction():
        row = await Pair.select().where(Pair.id == pair_id).first()
        if row is None:
            return
        values: dict[str, Any] = {"reason": reason, "model": model, "analysis": as_json({"raw": raw, "model": model})}
        if row["reviewed_by"] is None:
            values["status"] = "analysis_failed"
        await _write(pair_id, row, values, "model")
