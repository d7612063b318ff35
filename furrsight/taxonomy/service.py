"""The taxonomy's domain logic: seed, list, add, rename, merge, retire, resolve."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from furrsight.auth import audit
from furrsight.taxonomy.data import shipped_breeds, shipped_services
from furrsight.taxonomy.resolver import Entry, Resolver
from furrsight.taxonomy.schemas import BreedOut, EntryIn, EntryPatch, Kind, Resolution, ServiceOut
from furrsight.taxonomy.tables import Breed, Service

TABLES: dict[str, Any] = {"breeds": Breed, "services": Service}
OUT: dict[str, type[msgspec.Struct]] = {"breeds": BreedOut, "services": ServiceOut}
FIELDS = {"breeds": ("size", "coat", "fci_group"), "services": ("description",)}
DEFAULT_THRESHOLD = 86.0

# Later features keep labels that point at entries (pairs: breed and services). A merge calls each
# hook with (kind, merged id, kept id); the hook moves its labels and returns how many it moved.
MergeHook = Callable[[str, int, int], Awaitable[int]]
_merge_hooks: list[MergeHook] = []


class TaxonomyError(Exception):
    """Bad taxonomy input, said in words (a name that exists, a merge into itself…)."""


class EntryNotFound(TaxonomyError):
    pass


def on_merge(hook: MergeHook) -> MergeHook:
    if hook not in _merge_hooks:
        _merge_hooks.append(hook)
    return hook


def _out(kind: str, row: dict[str, Any]) -> Any:
    fields = {f: row[f] for f in OUT[kind].__struct_fields__}
    return msgspec.convert(fields, OUT[kind])


async def seed() -> dict[str, int]:
    """Insert the shipped entries whose key is not in the database yet (admins' edits stay)."""
    added = {}
    for kind, shipped in (("breeds", shipped_breeds()), ("services", shipped_services())):
        table = TABLES[kind]
        have = {r["key"] for r in await table.select(table.key)}
        taken = {r["name"].casefold() for r in await table.select(table.name)}
        rows = [table(**e) for e in shipped if e["key"] not in have and e["name"].casefold() not in taken]
        if rows:
            await table.insert(*rows)
        added[kind] = len(rows)
    return added


async def list_entries(kind: Kind, include_retired: bool = False) -> list[Any]:
    table = TABLES[kind]
    order = table.position if kind == "services" else table.name
    query = table.select().order_by(order)
    if not include_retired:
        query = query.where(table.retired == False)  # noqa: E712
    return [_out(kind, r) for r in await query.output(load_json=True)]


async def get_entry(kind: Kind, entry_id: int) -> Any:
    table = TABLES[kind]
    row = await table.select().where(table.id == entry_id).first().output(load_json=True)
    if row is None:
        raise EntryNotFound(f"{kind[:-1]} {entry_id} does not exist")
    return _out(kind, row)


async def _check_name(kind: Kind, name: str, except_id: int | None = None) -> None:
    table = TABLES[kind]
    for row in await table.select(table.id, table.name):
        if row["name"].casefold() == name.casefold() and row["id"] != except_id:
            raise TaxonomyError(f"a {kind[:-1]} named {row['name']!r} exists already (id {row['id']})")


def _slug(name: str) -> str:
    return "custom_" + "_".join(re.findall(r"[a-z0-9]+", name.casefold()))[:56]


async def add_entry(kind: Kind, data: EntryIn, actor: str | None) -> Any:
    name = data.name.strip()
    await _check_name(kind, name)
    table = TABLES[kind]
    values: dict[str, Any] = {"key": _slug(name), "name": name, "aliases": _unique(data.aliases)}
    values.update({f: getattr(data, f) for f in FIELDS[kind]})
    if kind == "services":
        values["position"] = len(await table.select(table.id))
    if await table.exists().where(table.key == values["key"]):
        values["key"] = f"{values['key']}_{len(await table.select(table.id)) + 1}"
    row = (await table.insert(table(**values)).returning(table.id))[0]
    await audit.record(f"taxonomy.{kind[:-1]}.add", actor, target=name, id=row["id"])
    return await get_entry(kind, row["id"])


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in (n.strip() for n in names):
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return list(seen.values())


async def update_entry(kind: Kind, entry_id: int, data: EntryPatch, actor: str | None) -> Any:
    """Rename (the old name is kept as an alias, so old labels and queries still resolve), change
    fields, retire or bring back."""
    before = await get_entry(kind, entry_id)
    changes: dict[str, Any] = {}
    aliases = list(data.aliases) if data.aliases is not None else list(before.aliases)
    if data.name is not None and data.name.strip() != before.name:
        await _check_name(kind, data.name.strip(), except_id=entry_id)
        changes["name"] = data.name.strip()
        aliases.append(before.name)
    if data.aliases is not None or "name" in changes:
        changes["aliases"] = [a for a in _unique(aliases) if a.casefold() != changes.get("name", "").casefold()]
    for field in (*FIELDS[kind], "retired"):
        value = getattr(data, field, None)
        if value is not None and value != getattr(before, field):
            changes[field] = value
    if changes:
        table = TABLES[kind]
        await table.update(changes).where(table.id == entry_id)
        old = {k: getattr(before, k) for k in changes}
        await audit.record(f"taxonomy.{kind[:-1]}.change", actor, target=before.name, id=entry_id, old=old, new=changes)
    return await get_entry(kind, entry_id)


async def merge(kind: Kind, source_id: int, into_id: int, actor: str | None) -> dict[str, Any]:
    """Merge ``source`` into ``into``: its labels move, its name and aliases become ``into``'s
    aliases, and it is retired (kept, pointing at ``into``). Audited with the labels moved."""
    if source_id == into_id:
        raise TaxonomyError("cannot merge an entry into itself")
    source, into = await get_entry(kind, source_id), await get_entry(kind, into_id)
    if into.retired:
        raise TaxonomyError(f"{into.name!r} is retired: merge into an active entry")
    if source.merged_into is not None:
        raise TaxonomyError(f"{source.name!r} was already merged into {source.merged_into}")
    table = TABLES[kind]
    aliases = [
        a for a in _unique([*into.aliases, source.name, *source.aliases]) if a.casefold() != into.name.casefold()
    ]
    await table.update({"aliases": aliases}).where(table.id == into_id)
    await table.update({"retired": True, "merged_into": into_id}).where(table.id == source_id)
    moved = 0
    for hook in _merge_hooks:
        moved += await hook(kind, source_id, into_id)
    await audit.record(
        f"taxonomy.{kind[:-1]}.merge",
        actor,
        target=source.name,
        id=source_id,
        into=into.name,
        into_id=into_id,
        labels_moved=moved,
    )
    return {"merged": source_id, "into": into_id, "labels_moved": moved}


async def resolver(kind: Kind, threshold: float = DEFAULT_THRESHOLD) -> Resolver:
    """A resolver over the active entries (merged names live on as the kept entry's aliases).
    Build it once per job or request: it is a snapshot of the table."""
    entries = [Entry(e.id, e.name, tuple(e.aliases)) for e in await list_entries(kind)]
    return Resolver(entries, threshold)


async def resolve(kind: Kind, text: str, threshold: float = DEFAULT_THRESHOLD) -> Resolution:
    return (await resolver(kind, threshold)).resolve(text)


async def names_of(breed_ids: set[int], service_ids: set[int]) -> tuple[dict[int, str], dict[int, str]]:
    """The names of just these breeds and services (retired ones too), in one query: what a page of
    pairs needs, without reading the whole vocabulary on every request."""
    if not breed_ids and not service_ids:
        return {}, {}
    ids = [*breed_ids, *service_ids]
    b_marks, s_marks = ",".join("{}" for _ in breed_ids) or "NULL", ",".join("{}" for _ in service_ids) or "NULL"
    rows = await Breed.raw(
        f"SELECT 'b' AS kind, id, name FROM breeds WHERE id IN ({b_marks}) "  # noqa: S608
        f"UNION ALL SELECT 's', id, name FROM services WHERE id IN ({s_marks})",
        *ids,
    )
    breeds = {r["id"]: r["name"] for r in rows if r["kind"] == "b"}
    return breeds, {r["id"]: r["name"] for r in rows if r["kind"] == "s"}


def names_in(
    conn: sqlite3.Connection, breed_ids: set[int], service_ids: set[int]
) -> tuple[dict[int, str], dict[int, str]]:
    """``names_of`` on a plain connection, in the caller's read (``Database.read_call``)."""
    if not breed_ids and not service_ids:
        return {}, {}
    b_marks, s_marks = ",".join("?" for _ in breed_ids) or "NULL", ",".join("?" for _ in service_ids) or "NULL"
    rows = conn.execute(
        f"SELECT 'b' AS kind, id, name FROM breeds WHERE id IN ({b_marks}) "  # noqa: S608
        f"UNION ALL SELECT 's', id, name FROM services WHERE id IN ({s_marks})",
        (*breed_ids, *service_ids),
    ).fetchall()
    return {r[1]: r[2] for r in rows if r[0] == "b"}, {r[1]: r[2] for r in rows if r[0] == "s"}
