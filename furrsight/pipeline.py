"""The order of the stages, and the one place that knows every feature's jobs.

ingest -> embed -> mine pairs -> analyse. Each feature declares its actors here; a later issue
chains a finished stage's work to the next stage's job here too.
"""

from __future__ import annotations

from dramatiq import Broker

from furrsight.images import tasks as images_tasks
from furrsight.queries import tasks as queries_tasks
from furrsight.scraping import tasks as scraping_tasks
from furrsight.settings import Settings

STAGES = ("ingest",)


def register_tasks(broker: Broker, settings: Settings) -> None:
    """Declare every feature's actors on ``broker`` (the web process sends, workers run)."""
    images_tasks.register(broker, settings)
    queries_tasks.register(broker, settings)
    scraping_tasks.register(broker, settings)
