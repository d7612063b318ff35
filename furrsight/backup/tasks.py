"""The backup actor, on the default queue (no model is loaded)."""

from dramatiq import Broker

from furrsight.backup import service
from furrsight.jobs.broker import declare_actor
from furrsight.jobs.runner import job_actor
from furrsight.settings import Settings


def register(broker: Broker, settings: Settings) -> None:
    declare_actor(broker, service.KIND, job_actor(service.run_backup, settings))
