"""Actors of the models: pull, import and verify (network and disk bound: the default queue)."""

from dramatiq import Broker

from furrsight.inference import service
from furrsight.jobs.broker import declare_actor
from furrsight.jobs.runner import job_actor
from furrsight.settings import Settings


def register(broker: Broker, settings: Settings) -> None:
    declare_actor(broker, service.PULL_KIND, job_actor(service.run_pull, settings))
    declare_actor(broker, service.IMPORT_KIND, job_actor(service.run_import, settings))
    declare_actor(broker, service.VERIFY_KIND, job_actor(service.run_verify, settings))
