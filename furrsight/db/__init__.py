"""Database: engine set-up (``engine.py``), piccolo configuration, migrations (``migrate.py``)."""

from __future__ import annotations

import os

os.environ.setdefault("PICCOLO_CONF", "furrsight.db.piccolo_conf")
