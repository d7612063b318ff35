"""Find scraper plugins: the ``plugins/`` folder, extra plugin folders, and ``furrsight.scrapers`` entry points.

Each candidate is imported and checked against the contract; one that fails is recorded with
its error (the plugins page and ``furrsight doctor`` show it) and skipped, never fatal.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import msgspec

from furrsight.scraping.contract import Scraper

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "furrsight.scrapers"
PLUGINS_PACKAGE = "plugins"
PLUGINS_DIR = Path(__file__).resolve().parent.parent.parent / PLUGINS_PACKAGE


@dataclass(frozen=True)
class BrokenPlugin:
    source: str  # the module or entry point
    error: str


@dataclass
class Registry:
    scrapers: dict[str, Scraper] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


def check_plugin(obj: Any) -> Scraper:
    """An instance of ``obj`` if it meets the contract; otherwise TypeError saying what is off."""
    cls = obj if inspect.isclass(obj) else type(obj)
    for attr in ("name", "description"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
            raise TypeError(f"{cls.__name__} has no string {attr!r}")
    params = getattr(cls, "Params", None)
    if not (inspect.isclass(params) and issubclass(params, msgspec.Struct)):
        raise TypeError(f"{cls.__name__}.Params is not a msgspec Struct")
    msgspec.json.schema(params)  # a Params the form cannot be rendered from fails here
    if not inspect.isasyncgenfunction(getattr(cls, "scrape", None)):
        raise TypeError(f"{cls.__name__}.scrape is not an async generator function")
    instance = obj() if inspect.isclass(obj) else obj
    return cast(Scraper, instance)


def _module_scrapers(module: Any) -> list[Any]:
    found = getattr(module, "SCRAPERS", None)
    if found is not None:
        return list(found)
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and obj.__module__ == module.__name__ and issubclass(obj, Scraper)
    ]


def _add(registry: Registry, source: str, obj: Any) -> None:
    try:
        plugin = check_plugin(obj)
    except Exception as exc:
        registry.broken.append(BrokenPlugin(source, f"{type(exc).__name__}: {exc}"))
        return
    if plugin.name in registry.scrapers:
        registry.broken.append(
            BrokenPlugin(source, f"name {plugin.name!r} already taken by {registry.sources[plugin.name]}")
        )
        return
    registry.scrapers[plugin.name] = plugin
    registry.sources[plugin.name] = source


def _import(folder: Path, name: str) -> Any:
    if folder == PLUGINS_DIR:
        return importlib.import_module(f"{PLUGINS_PACKAGE}.{name}")
    module_name = f"furrsight_plugins_{abs(hash(str(folder)))}.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, folder / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {folder / name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[module_name] = module
    return module


def _scan(registry: Registry, folder: Path) -> None:
    for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda i: i.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        source = f"{PLUGINS_PACKAGE}.{info.name}" if folder == PLUGINS_DIR else str(folder / f"{info.name}.py")
        try:
            module = _import(folder, info.name)
        except Exception as exc:
            registry.broken.append(BrokenPlugin(source, f"{type(exc).__name__}: {exc}"))
            continue
        for obj in _module_scrapers(module):
            _add(registry, source, obj)


def discover(disabled: list[str] | None = None, extra_dirs: list[str] | None = None) -> Registry:
    """Built-ins from ``plugins/``, modules in ``extra_dirs``, then installed entry points."""
    registry = Registry()
    for folder in [PLUGINS_DIR, *(Path(d).expanduser().resolve() for d in extra_dirs or [])]:
        if folder.is_dir():
            _scan(registry, folder)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {entry.name} ({entry.value})"
        try:
            _add(registry, source, entry.load())
        except Exception as exc:
            registry.broken.append(BrokenPlugin(source, f"{type(exc).__name__}: {exc}"))
    for name in disabled or []:
        registry.scrapers.pop(name, None)
    for broken in registry.broken:
        logger.warning("scraper plugin %s not loaded: %s", broken.source, broken.error)
    return registry


def plugin_settings(scraping: Any, plugin: Scraper) -> dict[str, Any]:
    """``ctx.settings`` of one plugin: the scrapers' ``user_agent`` and ``contact``, every setting
    ``scraping.<name>_<key>`` as ``<key>`` (``scraping.reddit_client_id`` → ``client_id``), then the
    plugin's own ``[scraping.plugin_settings.<name>]`` table on top."""
    prefix = f"{plugin.name}_"
    out: dict[str, Any] = {"user_agent": scraping.user_agent, "contact": scraping.contact}
    for field_name in type(scraping).__struct_fields__:
        if field_name.startswith(prefix):
            out[field_name.removeprefix(prefix)] = getattr(scraping, field_name)
    out.update(scraping.plugin_settings.get(plugin.name, {}))
    return out


def missing_credentials(scraping: Any, plugin: Scraper) -> list[str]:
    """The names of the settings a plugin's credentials come from that are empty (never their values)."""
    given = plugin_settings(scraping, plugin)
    names = []
    for key in getattr(plugin, "credentials", ()):
        if not str(given.get(key) or "").strip():
            field_name = f"{plugin.name}_{key}"
            known = field_name in type(scraping).__struct_fields__
            names.append(f"scraping.{field_name}" if known else f"scraping.plugin_settings.{plugin.name}.{key}")
    return names
