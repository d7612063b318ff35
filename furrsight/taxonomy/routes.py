"""Taxonomy: the JSON API (everyone reads, admins change) and the page with its admin forms."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, patch, post
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import Body, Parameter
from litestar.response import Redirect, Template

from furrsight.taxonomy import service
from furrsight.taxonomy.schemas import BreedOut, EntryIn, EntryPatch, Kind, MergeIn, Resolution, ServiceOut
from furrsight.web.deps import SettingsDep
from furrsight.web.pages import page

ADMIN = {"role": "admin"}
EntryId = Annotated[int, Parameter(ge=1, le=2**63 - 1, description="the entry's id")]
KindParam = Annotated[Kind, Parameter(description="breeds or services")]


def _actor(request: Request[Any, Any, Any]) -> str | None:
    return getattr(request.scope.get("user"), "username", None)


async def _call(coro: Any) -> Any:
    """Run a service call, turning its errors into 404 / 409 in words."""
    try:
        return await coro
    except service.EntryNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except service.TaxonomyError as exc:
        raise HTTPException(str(exc), status_code=409) from exc


# -- API ---------------------------------------------------------------------------------------
@get("/api/v1/taxonomy/breeds")
async def api_breeds(include_retired: bool = False) -> list[BreedOut]:
    """Every breed: id, name, aliases, size class, coat type, FCI group (retired ones on request)."""
    return await service.list_entries("breeds", include_retired)


@get("/api/v1/taxonomy/services")
async def api_services(include_retired: bool = False) -> list[ServiceOut]:
    """Every grooming service: id, name, one-line description, aliases, review order."""
    return await service.list_entries("services", include_retired)


@get("/api/v1/taxonomy/{kind:str}/resolve")
async def api_resolve(
    kind: KindParam, text: Annotated[str, Parameter(min_length=1, max_length=500)], settings: SettingsDep
) -> Resolution:
    """Map free text to an entry by name, alias or a close spelling; ``id: null`` means unknown."""
    return await service.resolve(kind, text, settings.taxonomy.match_threshold)


@post("/api/v1/taxonomy/{kind:str}", opt=ADMIN, status_code=201)
async def api_add(request: Request[Any, Any, Any], kind: KindParam, data: Annotated[EntryIn, Body()]) -> Any:
    """Add a breed or service (admin); 409 when the name exists."""
    return await _call(service.add_entry(kind, data, _actor(request)))


@patch("/api/v1/taxonomy/{kind:str}/{entry_id:int}", opt=ADMIN)
async def api_change(
    request: Request[Any, Any, Any], kind: KindParam, entry_id: EntryId, data: Annotated[EntryPatch, Body()]
) -> Any:
    """Rename (the old name stays an alias), change fields, retire or restore (admin)."""
    return await _call(service.update_entry(kind, entry_id, data, _actor(request)))


@post("/api/v1/taxonomy/{kind:str}/{entry_id:int}/merge", opt=ADMIN)
async def api_merge(
    request: Request[Any, Any, Any], kind: KindParam, entry_id: EntryId, data: Annotated[MergeIn, Body()]
) -> dict[str, Any]:
    """Merge this entry into ``into``: labels move there, this one is retired (admin, audited)."""
    return await _call(service.merge(kind, entry_id, data.into, _actor(request)))


# -- pages -------------------------------------------------------------------------------------
async def _page(request: Request[Any, Any, Any], error: str | None = None, status: int = 200) -> Template:
    response = page(
        request, "taxonomy/list.html",
        breeds=await service.list_entries("breeds", include_retired=True),
        services=await service.list_entries("services", include_retired=True),
        error=error, notice=request.query_params.get("notice"),
    )  # fmt: skip
    response.status_code = status
    return response


@get("/taxonomy", include_in_schema=False)
async def taxonomy_page(request: Request[Any, Any, Any]) -> Template:
    return await _page(request)


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {k: str(v).strip() for k, v in (await request.form()).items() if k != "_csrf_token"}


async def _by_name(kind: Kind, name: str) -> int:
    for entry in await service.list_entries(kind):
        if entry.name.casefold() == name.casefold():
            return int(entry.id)
    raise service.TaxonomyError(f"no active {kind[:-1]} is named {name!r}")


async def _form_action(request: Request[Any, Any, Any], kind: Kind, action: Any) -> Redirect | Template:
    if kind not in ("breeds", "services"):
        raise NotFoundException(f"no taxonomy {kind!r}: breeds or services")
    try:
        notice = await action
    except (service.TaxonomyError, ValueError, TypeError) as exc:
        return await _page(request, error=str(exc), status=409 if isinstance(exc, service.TaxonomyError) else 400)
    return Redirect(f"/taxonomy?notice={notice}#{kind}", status_code=303)


@post("/taxonomy/{kind:str}", opt=ADMIN, include_in_schema=False)
async def taxonomy_add(request: Request[Any, Any, Any], kind: str) -> Redirect | Template:
    form = await _form(request)

    async def act() -> str:
        aliases = [a for a in form.get("aliases", "").split(";") if a.strip()]
        extra: dict[str, Any] = {"description": form.get("description", "")}
        if kind == "breeds":
            extra = {"size": form.get("size") or "medium", "coat": form.get("coat") or "combination",
                     "fci_group": int(form["fci_group"]) if form.get("fci_group") else None}  # fmt: skip
        entry = await service.add_entry(kind, EntryIn(name=form.get("name", ""), aliases=aliases, **extra), _actor(request))  # type: ignore[arg-type]
        return f"added {entry.name}"

    if not form.get("name"):
        return await _page(request, error="a name is needed", status=400)
    return await _form_action(request, kind, act())  # type: ignore[arg-type]


@post("/taxonomy/{kind:str}/{entry_id:int}", opt=ADMIN, include_in_schema=False)
async def taxonomy_change(request: Request[Any, Any, Any], kind: str, entry_id: EntryId) -> Redirect | Template:
    form = await _form(request)

    async def act() -> str:
        if form.get("merge_into"):
            into = await _by_name(kind, form["merge_into"])  # type: ignore[arg-type]
            done = await service.merge(kind, entry_id, into, _actor(request))  # type: ignore[arg-type]
            return f"merged: {done['labels_moved']} labels moved"
        patch_ = EntryPatch(name=form.get("name") or None, retired={"1": True, "0": False}.get(form.get("retired", "")))
        entry = await service.update_entry(kind, entry_id, patch_, _actor(request))  # type: ignore[arg-type]
        return f"saved {entry.name}"

    return await _form_action(request, kind, act())  # type: ignore[arg-type]


router = Router(
    path="/",
    route_handlers=[api_breeds, api_services, api_resolve, api_add, api_change, api_merge,
                    taxonomy_page, taxonomy_add, taxonomy_change],
)  # fmt: skip
__all__ = ["ClientException", "router"]
