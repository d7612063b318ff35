"""Actors of exports: versions and exports on the default queue (no model is loaded)."""

from dramatiq import Broker

from furrsight.exports import service
from furrsight.jobs.broker import declare_actor
from furrsight.jobs.runner import job_actor
from furrsight.settings import Settings


def register(broker: Broker, settings: Settings) -> None:
    declare_actor(broker, service.VERSION_KIND, job_actor(service.run_version, settings))
    declare_actor(broker, service.EXPORT_KIND, job_actor(service.run_export, settings))
