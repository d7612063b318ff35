"""The worker entry point: ``dramatiq furrsight.worker:setup`` (what ``furrsight worker`` runs).

The broker is created and set before any actor is declared; then every feature declares its
actors on it, and the database is opened for this process.
"""

from __future__ import annotations

import logging

import dramatiq

from furrsight.db.setup import open_database
from furrsight.jobs.broker import create_broker
from furrsight.pipeline import register_tasks
from furrsight.settings import load_settings


def setup() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    broker = create_broker(settings)
    dramatiq.set_broker(broker)
    register_tasks(broker, settings)
    open_database(settings)
