"""One typed settings object, read once: embedded defaults < TOML file < ``FURRSIGHT_*`` variables.

Every field carries a one-line description (``Doc``); ``tests/test_settings.py`` fails when one
does not, and ``furrsight settings`` prints them all. Environment names are the field path in
upper case joined by ``_``: ``data_dir`` -> ``FURRSIGHT_DATA`` (the one short alias),
``scraping.allowed_networks`` -> ``FURRSIGHT_SCRAPING_ALLOWED_NETWORKS``. Lists are
comma-separated in the environment.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec

ENV_PREFIX = "FURRSIGHT_"
# Short names kept for the variables a user types most.
ENV_ALIASES = {"data_dir": "FURRSIGHT_DATA", "config": "FURRSIGHT_CONFIG"}


def Doc(text: str) -> msgspec.Meta:  # noqa: N802  (reads like an annotation)
    return msgspec.Meta(description=text)


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(base, "furrsight")


class JobSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    worker_threads: Annotated[int, Doc("Threads of the default-queue worker process."), msgspec.Meta(ge=1)] = 2
    heartbeat_timeout_ms: Annotated[
        int, Doc("A worker silent this long (ms) is dead and its messages are redelivered.")
    ] = 5000
    maintenance_chance: Annotated[
        int, Doc("Broker calls per million that sweep dead workers (higher: faster redelivery).")
    ] = 100_000
    log_tail_lines: Annotated[int, Doc("Lines of a job's log shown on its page.")] = 200


class IngestSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_file_bytes: Annotated[int, Doc("Largest accepted image file, in bytes.")] = 50 * 1024 * 1024
    max_upload_bytes: Annotated[int, Doc("Largest accepted upload request, in bytes.")] = 512 * 1024 * 1024
    thumb_size: Annotated[int, Doc("Longest side of a thumbnail, in pixels.")] = 320
    max_pixels: Annotated[
        int, Doc("Most pixels (width x height, read from the header) an image may declare: bombs are refused.")
    ] = 100_000_000
    min_side: Annotated[int, Doc("Images with a shorter side below this many pixels are refused.")] = 64
    small_side: Annotated[int, Doc("Images with a shorter side below this are flagged `small`.")] = 400
    blur_threshold: Annotated[
        float, Doc("Variance of the Laplacian (at 512 px) below which an image is flagged `blurry`.")
    ] = 60.0
    max_aspect: Annotated[float, Doc("Long side / short side above which an image is flagged `extreme_aspect`.")] = 3.0
    near_dup_distance: Annotated[
        int, Doc("Largest Hamming distance of two 64-bit perceptual hashes in one near-duplicate group.")
    ] = 6
    split_collages: Annotated[bool, Doc("Detect two-panel before/after collages and split them into two images.")] = (
        True
    )
    concurrency: Annotated[
        int, Doc("Files an import job ingests at once (decoding overlaps disk and database work)."), msgspec.Meta(ge=1)
    ] = 3
    collage_min_confidence: Annotated[float, Doc("Least detection confidence (0-1) for an automatic split.")] = 0.6


class ScrapingSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    allowed_networks: Annotated[
        list[str], Doc("CIDRs that scrapers may fetch although private or loopback (default: none).")
    ] = msgspec.field(default_factory=list)
    user_agent: Annotated[str, Doc("User-Agent sent by scrapers.")] = (
        "FurrSight/0.1 (+https://github.com/furrsight; dataset research crawler)"
    )


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    data_dir: Annotated[str, Doc("Directory holding the database, files, models, exports and logs.")] = msgspec.field(
        default_factory=_default_data_dir
    )
    host: Annotated[str, Doc("Address the web process listens on.")] = "127.0.0.1"
    port: Annotated[int, Doc("Port the web process listens on."), msgspec.Meta(ge=0, le=65535)] = 8000
    broker_url: Annotated[str, Doc("Valkey/Redis URL of the broker; empty: `furrsight up` starts a private one.")] = ""
    broker_namespace: Annotated[str, Doc("Key prefix of the broker's queues in Valkey.")] = "furrsight"
    import_roots: Annotated[list[str], Doc("Server folders that folder imports may read below (comma-separated).")] = (
        msgspec.field(default_factory=list)
    )
    page_size: Annotated[int, Doc("Items per page in the gallery and lists.")] = 48
    db_busy_timeout_ms: Annotated[int, Doc("How long a SQLite writer waits for the lock, in ms.")] = 10_000
    log_level: Annotated[str, Doc("Log level of all processes (DEBUG, INFO, WARNING).")] = "INFO"
    jobs: Annotated[JobSettings, Doc("Background jobs and workers.")] = msgspec.field(default_factory=JobSettings)
    ingest: Annotated[IngestSettings, Doc("Limits and derived images of ingest.")] = msgspec.field(
        default_factory=IngestSettings
    )
    scraping: Annotated[ScrapingSettings, Doc("Scrapers and their HTTP client.")] = msgspec.field(
        default_factory=ScrapingSettings
    )

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def db_path(self) -> Path:
        return self.data_path / "furrsight.db"


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
