"""Run after every ``migrate``: add the shipped entries that the database does not have yet."""

from furrsight.taxonomy.service import seed

__all__ = ["seed"]
