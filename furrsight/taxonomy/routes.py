"""Taxonomy: the JSON API (everyone reads, admins change) and the page with its admin forms."""

from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, get, patch, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from furrsight.taxonomy import service
from furrsight.taxonomy.schemas import BreedOut, EntryIn, EntryPatch, Kind, MergeIn, MergeOut, Resolution, ServiceOut
from furrsight.web.api import RowId, answers
from furrsight.web.deps import SettingsDep
from furrsight.web.pages import page
from furrsight.web.routing import feature_router

ADMIN = {"role": "admin"}
EntryId = RowId


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
def _api(kind: Kind, out: Any) -> list[Any]:
    """The same five operations for breeds and for services, each on its own documented path."""
    one = kind[:-1]

    @get(f"/api/v1/taxonomy/{kind}", operation_id=f"list_{kind}", summary=f"List {kind}", responses=answers())
    async def api_list(include_retired: FromQuery[bool] = False) -> list[out]:  # type: ignore[valid-type]
        return await service.list_entries(kind, include_retired)  # type: ignore[no-any-return]

    @get(f"/api/v1/taxonomy/{kind}/resolve", operation_id=f"resolve_{one}", summary=f"Resolve free text to a {one}",
         responses=answers())  # fmt: skip
    async def api_resolve(
        text: Annotated[str, QueryParameter(min_length=1, max_length=500)], settings: SettingsDep
    ) -> Resolution:
        """Map free text by name, alias or a close spelling; ``id: null`` means unknown."""
        return await service.resolve(kind, text, settings.taxonomy.match_threshold)

    @post(f"/api/v1/taxonomy/{kind}", opt=ADMIN, status_code=201, operation_id=f"add_{one}", summary=f"Add a {one}",
          responses=answers(409))  # fmt: skip
    async def api_add(request: Request[Any, Any, Any], data: Annotated[EntryIn, Body()]) -> out:  # type: ignore[valid-type]
        """Admin; 409 when the name exists."""
        return await _call(service.add_entry(kind, data, _actor(request)))

    @patch(
        f"/api/v1/taxonomy/{kind}/{{entry_id:int}}",
        opt=ADMIN,
        operation_id=f"change_{one}",
        summary=f"Rename, change, retire or restore a {one}",
        responses=answers(404, 409),
    )
    async def api_change(
        request: Request[Any, Any, Any], entry_id: EntryId, data: Annotated[EntryPatch, Body()]
    ) -> out:  # type: ignore[valid-type]
        """Admin; a rename keeps the old name as an alias."""
        return await _call(service.update_entry(kind, entry_id, data, _actor(request)))

    @post(
        f"/api/v1/taxonomy/{kind}/{{entry_id:int}}/merge",
        opt=ADMIN,
        status_code=200,
        operation_id=f"merge_{one}",
        summary=f"Merge a {one} into another",
        responses=answers(404, 409),
    )
    async def api_merge(
        request: Request[Any, Any, Any], entry_id: EntryId, data: Annotated[MergeIn, Body()]
    ) -> MergeOut:
        """Admin, audited: labels move to ``into``, this entry is retired and points there."""
        return MergeOut(**await _call(service.merge(kind, entry_id, data.into, _actor(request))))

    return [api_list, api_resolve, api_add, api_change, api_merge]


# -- pages -------------------------------------------------------------------------------------
async def _page(request: Request[Any, Any, Any], error: str | None = None, status: int = 200) -> Template:
    response = page(
        request,
        "taxonomy/list.html",
        breeds=await service.list_entries("breeds", include_retired=True),
        services=await service.list_entries("services", include_retired=True),
        error=error,
        notice=request.query_params.get("notice"),
    )
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


def _kind(kind: str) -> Kind:
    if kind not in ("breeds", "services"):
        raise NotFoundException(f"no taxonomy {kind!r}: breeds or services")
    return kind  # type: ignore[return-value]


async def _form_action(request: Request[Any, Any, Any], kind: Kind, action: Any) -> Redirect | Template:
    try:
        notice = await action(kind, await _form(request), _actor(request))
    except service.TaxonomyError as exc:
        return await _page(request, error=str(exc), status=409)
    except (msgspec.ValidationError, ValueError) as exc:
        return await _page(request, error=f"not saved: {exc}", status=400)
    return Redirect(f"/taxonomy?{urlencode({'notice': notice})}#{kind}", status_code=303)


async def _add(kind: Kind, form: dict[str, str], actor: str | None) -> str:
    values: dict[str, Any] = {
        "name": form.get("name", ""),
        "aliases": [a for a in form.get("aliases", "").split(";") if a.strip()],
    }
    if kind == "breeds":
        values.update(
            size=form.get("size") or "medium",
            coat=form.get("coat") or "combination",
            fci_group=int(form["fci_group"]) if form.get("fci_group") else None,
        )
    else:
        values["description"] = form.get("description", "")
    entry = await service.add_entry(kind, msgspec.convert(values, EntryIn), actor)
    return f"added {entry.name}"


async def _change(kind: Kind, entry_id: int, form: dict[str, str], actor: str | None) -> str:
    if form.get("merge_into"):
        done = await service.merge(kind, entry_id, await _by_name(kind, form["merge_into"]), actor)
        return f"merged: {done['labels_moved']} labels moved"
    retired = {"1": True, "0": False}.get(form.get("retired", ""))
    change = msgspec.convert({"name": form.get("name") or None, "retired": retired}, EntryPatch)
    entry = await service.update_entry(kind, entry_id, change, actor)
    return f"saved {entry.name}"


@post("/taxonomy/{kind:str}", opt=ADMIN, include_in_schema=False)
async def taxonomy_add(request: Request[Any, Any, Any], kind: FromPath[str]) -> Redirect | Template:
    return await _form_action(request, _kind(kind), _add)


@post("/taxonomy/{kind:str}/{entry_id:int}", opt=ADMIN, include_in_schema=False)
async def taxonomy_change(
    request: Request[Any, Any, Any], kind: FromPath[str], entry_id: EntryId
) -> Redirect | Template:
    return await _form_action(request, _kind(kind), lambda k, form, actor: _change(k, entry_id, form, actor))


router = feature_router(
    "taxonomy",
    api=[*_api("breeds", BreedOut), *_api("services", ServiceOut)],
    pages=[taxonomy_page, taxonomy_add, taxonomy_change],
)
