"""FurrSight: build a licensed, labelled before/after dog-grooming dataset on one machine."""

from furrsight.db import sqlite_compat as _sqlite_compat  # noqa: F401  (must run first)

__version__ = "0.1.0"
