"""Reading the settings once: embedded defaults < TOML file < ``FURRSIGHT_*`` variables; and the
list of every setting with its variable and description (``furrsight settings``)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from furrsight.settings.sections import Settings

ENV_PREFIX = "FURRSIGHT_"
# Short names kept for the variables a user types most.
ENV_ALIASES = {"data_dir": "FURRSIGHT_DATA", "config": "FURRSIGHT_CONFIG"}


class SettingsError(ValueError):
    """A setting could not be read; the message names it."""


def _env_name(path: tuple[str, ...]) -> str:
    key = ".".join(path)
    return ENV_ALIASES.get(key) or ENV_PREFIX + "_".join(p.upper() for p in path)


def _env_overrides(cls: type[msgspec.Struct], environ: dict[str, str], path: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        here = (*path, field.name)
        ftype = field.type
        if isinstance(ftype, msgspec.inspect.Metadata):
            ftype = ftype.type
        if isinstance(ftype, msgspec.inspect.StructType):
            nested = _env_overrides(ftype.cls, environ, here)
            if nested:
                out[field.name] = nested
            continue
        raw = environ.get(_env_name(here))
        if raw is None:
            continue
        if isinstance(ftype, msgspec.inspect.ListType):
            out[field.name] = [item.strip() for item in raw.split(",") if item.strip()]
        else:
            out[field.name] = raw
    return out


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(environ: dict[str, str] | None = None, config_file: str | None = None) -> Settings:
    """Read the settings once: defaults, then the TOML file, then the environment."""
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    path = config_file or env.get(ENV_ALIASES["config"])
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {path}: {exc}") from exc
    data = _merge(data, _env_overrides(Settings, env))
    try:
        return msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid setting: {exc}") from exc


def iter_settings_docs(cls: type[msgspec.Struct] = Settings, path: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """(dotted name, environment variable, description) for every leaf setting."""
    rows: list[tuple[str, str, str]] = []
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        here = (*path, field.name)
        ftype = field.type
        description = ""
        if isinstance(ftype, msgspec.inspect.Metadata):
            description = (ftype.extra_json_schema or {}).get("description", "")
            ftype = ftype.type
        if isinstance(ftype, msgspec.inspect.StructType):
            rows.extend(iter_settings_docs(ftype.cls, here))
            continue
        rows.append((".".join(here), _env_name(here), description))
    return rows
