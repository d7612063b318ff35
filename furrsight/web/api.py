"""What every JSON operation shares: bounded integer parameters, the error body, the answers
it documents, and request bodies that a handler reads itself (streamed multipart uploads).

Declared once here so that each route states its contract in one line and the OpenAPI document
at ``/schema/openapi.json`` says exactly what the API accepts and answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.params import PathParameter, QueryParameter
from litestar.typing import FieldDefinition

# The largest integer a JSON number carries exactly (JavaScript's MAX_SAFE_INTEGER; the OpenAPI
# document writes bounds as floats). Far below SQLite's 64-bit INTEGER, whose overflow made the
# driver raise OverflowError (a 500): bounded here, a larger id or cursor is a 400 in words.
MAX_INT = 2**53 - 1

RowId = Annotated[int, PathParameter(ge=1, le=MAX_INT)]
"""A row id in a path (``/images/{image_id}``): 1 … 2**53-1, else 400."""

Cursor = Annotated[int | None, QueryParameter(ge=1, le=MAX_INT, description="next_cursor of the previous page")]
"""``?cursor=``: the ``next_cursor`` of the previous page."""

GroupId = Annotated[int | None, QueryParameter(ge=1, le=MAX_INT, description="a near-duplicate group id")]
ParentId = Annotated[int | None, QueryParameter(ge=1, le=MAX_INT, description="panels cut from this collage")]
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="how many items per page")]


class ErrorOut(msgspec.Struct, kw_only=True):
    """Every error answer of the API: what went wrong in words, and the status again."""

    error: str
    status: int
    detail: Any = msgspec.UNSET  # for 400 on a parameter or field: which one, and why


_MEANING = {
    400: "bad input: the message names the parameter or field and what is wrong",
    401: "sign in first: no valid session cookie or 'Authorization: Bearer' token",
    403: "your role may not do this (or a browser request without its CSRF token)",
    404: "no such thing",
    409: "conflicts with the current state: the message says why",
    413: "too large: the message gives the limit",
    415: "not a readable image",
    503: "the broker is unreachable: the job is recorded, queued, and can be retried",
}


def answers(*codes: int) -> dict[int, ResponseSpec]:
    """The error answers of an operation: 400, 401 and 403 always, plus ``codes``."""
    return {
        code: ResponseSpec(data_container=ErrorOut, description=_MEANING[code], generate_examples=False)
        for code in sorted({400, 401, 403, *codes})
    }


def multipart(description: str, *, files: str | None = None, file: str | None = None) -> type[Operation]:
    """An OpenAPI operation whose request body is ``multipart/form-data`` with a repeatable
    field ``files`` or a single field ``file``: for handlers that read the body themselves
    (streamed to disk), which Litestar cannot describe from their signature."""
    properties: dict[str, Schema | Reference] = {}
    if files:
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        properties[files] = Schema(type=OpenAPIType.ARRAY, items=binary, min_items=1)
    if file:
        properties[file] = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
    body = RequestBody(
        description=description,
        required=True,
        content={
            "multipart/form-data": OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.OBJECT, properties=properties, required=sorted(properties))
            )
        },
    )

    @dataclass
    class MultipartOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    return MultipartOperation


@dataclass
class OptionalBody(Operation):
    """An operation whose JSON body may be left out (``data: T | None = None``): Litestar marks
    every body as required."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


@dataclass
class FileAnswer(Operation):
    """A file download: Litestar documents its ``Last-Modified`` as an ISO date-time, but it is an
    HTTP-date (``Tue, 01 Dec 2026 09:09:33 GMT``)."""

    def __post_init__(self) -> None:
        for answer in (self.responses or {}).values():
            header = (getattr(answer, "headers", None) or {}).get("last-modified")
            if header is not None and not isinstance(header, Reference):
                header.schema = Schema(type=OpenAPIType.STRING, description="an HTTP-date (RFC 9110)")


class StrictStructSchema(StructSchemaPlugin):
    """What Litestar leaves out of a msgspec struct's schema: a struct that forbids unknown fields
    (a 400 names the stray one) says ``additionalProperties: false``, and the bounds of a list's
    strings (``list[Annotated[str, Meta(min_length=1)]]``) reach its ``items``."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct = field_definition.type_
        if struct.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        for field in msgspec.inspect.type_info(struct).fields:  # type: ignore[attr-defined]
            _bound_list_items(field.type, (schema.properties or {}).get(field.encode_name))
        return schema


def _bound_list_items(kind: Any, schema: Any) -> None:
    kinds = kind.types if isinstance(kind, msgspec.inspect.UnionType) else (kind,)
    items = [k.item_type for k in kinds if isinstance(k, msgspec.inspect.ListType)]
    if not items or not isinstance(items[0], msgspec.inspect.StrType) or not isinstance(schema, Schema):
        return
    for option in [schema, *(schema.one_of or [])]:
        if isinstance(option, Schema) and isinstance(option.items, Schema):
            option.items.min_length = items[0].min_length
            option.items.max_length = items[0].max_length
            option.items.pattern = items[0].pattern
