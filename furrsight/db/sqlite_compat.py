"""Pick the ``sqlite3`` module once, before piccolo or aiosqlite import it.

sqlite-vec is a loadable SQLite extension. Some Python builds (pyenv's default on these
machines, for one) are compiled without ``enable_load_extension``; Debian's ``/usr/bin/python3``
has it. Rather than tie the appliance to one interpreter, we keep the standard library module
when it can load extensions and otherwise swap in ``pysqlite3`` (a wheel that bundles a recent
SQLite built with extension loading) under the name ``sqlite3``. Everything that imports
``sqlite3`` afterwards (aiosqlite, piccolo, our own code) gets the same module.

``furrsight/__init__.py`` imports this module first, so the swap happens before anything else.
"""

from __future__ import annotations

import sys
from types import ModuleType


def _can_load_extensions(module: ModuleType) -> bool:
    connection = module.connect(":memory:")
    try:
        return hasattr(connection, "enable_load_extension")
    finally:
        connection.close()


def choose_sqlite() -> tuple[ModuleType, str]:
    """Return the sqlite3 module in use and where it came from ("stdlib" or "pysqlite3")."""
    import sqlite3

    origin = getattr(sqlite3, "__furrsight_origin__", None)
    if origin:
        return sqlite3, origin
    if _can_load_extensions(sqlite3):
        sqlite3.__furrsight_origin__ = "stdlib"  # type: ignore[attr-defined]
        return sqlite3, "stdlib"
    try:
        import pysqlite3.dbapi2 as bundled  # type: ignore[import-not-found]
    except ImportError:
        sqlite3.__furrsight_origin__ = "stdlib-no-extensions"  # type: ignore[attr-defined]
        return sqlite3, "stdlib-no-extensions"
    bundled.__furrsight_origin__ = "pysqlite3"  # type: ignore[attr-defined]
    sys.modules["sqlite3"] = bundled
    sys.modules["sqlite3.dbapi2"] = bundled
    return bundled, "pysqlite3"


sqlite3, ORIGIN = choose_sqlite()
