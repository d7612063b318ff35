"""Actors of the scraping feature."""

from dramatiq import Broker

from furrsight.jobs.broker import declare_actor
from furrsight.jobs.runner import Then, job_actor
from furrsight.scraping import runner, service
from furrsight.settings import Settings


def register(broker: Broker, settings: Settings, then: Then | None = None) -> None:
    declare_actor(broker, service.SCRAPE_KIND, job_actor(runner.run_scrape, settings, then))
