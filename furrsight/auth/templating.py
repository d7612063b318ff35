"""Template helpers: ``{% if can("curator") %}…{% endif %}`` hides what the user's role cannot use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar.plugins.jinja import JinjaTemplateEngine


def can(context: Mapping[str, Any], role: str) -> bool:
    request = context.get("request")
    user = request.scope.get("user") if request is not None else None
    return bool(user is not None and user.can(role))


def current_user(context: Mapping[str, Any]) -> Any:
    request = context.get("request")
    return request.scope.get("user") if request is not None else None


def register_template_helpers(engine: JinjaTemplateEngine) -> None:
    engine.register_template_callable("can", can)
    engine.register_template_callable("current_user", current_user)
