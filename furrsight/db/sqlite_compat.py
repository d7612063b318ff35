"""Pick the ``sqlite3`` module once, before piccolo or aiosqlite import it — and load only one
copy of SQLite into the process.

sqlite-vec is a loadable SQLite extension. Some Python builds (pyenv's default on these machines,
for one) are compiled without ``enable_load_extension``. ``pysqlite3`` (the ``pysqlite3-binary``
wheel, a dependency on x86-64 Linux) bundles a recent SQLite built with extension loading; when it
is installed we install it under the name ``sqlite3`` and never import the standard library's
``_sqlite3``. Where the wheel does not exist (other platforms) the standard module is used, which
works on Pythons that can load extensions (Debian's ``/usr/bin/python3``); ``furrsight doctor``
says which one is in use.

Why never both: importing the standard module to *probe* it maps the system ``libsqlite3`` into
the process next to pysqlite3's own copy. SQLite warns that two copies in one process break its
POSIX locking (closing a file in one copy drops the other's locks); seen here as a connection
deadlocked on SQLite's global mutex inside ``unixOpen``.

``furrsight/__init__.py`` imports this module first, so the choice happens before anything else.
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
    """Return the sqlite3 module in use and where it came from."""
    current = sys.modules.get("sqlite3")
    origin = getattr(current, "__furrsight_origin__", None)
    if current is not None and origin:
        return current, origin
    if current is None and "_sqlite3" not in sys.modules:
        try:
            import pysqlite3.dbapi2 as bundled  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            bundled.__furrsight_origin__ = "pysqlite3"  # type: ignore[attr-defined]
            sys.modules["sqlite3"] = bundled
            sys.modules["sqlite3.dbapi2"] = bundled
            return bundled, "pysqlite3"
    # No bundled SQLite (or the standard one was imported before us: keep using only that copy).
    import sqlite3

    origin = "stdlib" if _can_load_extensions(sqlite3) else "stdlib-no-extensions"
    sqlite3.__furrsight_origin__ = origin  # type: ignore[attr-defined]
    return sqlite3, origin


sqlite3, ORIGIN = choose_sqlite()
