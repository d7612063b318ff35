"""Actors of the images feature: thin wrappers that run the service's job handlers."""

from dramatiq import Broker

from furrsight.images import process, service
from furrsight.jobs.broker import declare_actor
from furrsight.jobs.runner import Then, job_actor
from furrsight.settings import Settings


def register(broker: Broker, settings: Settings, then: Then | None = None) -> None:
    declare_actor(broker, service.IMPORT_KIND, job_actor(service.run_import, settings, then))
    declare_actor(broker, process.REPROCESS_KIND, job_actor(process.run_reprocess, settings))
