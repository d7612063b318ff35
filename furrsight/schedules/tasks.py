"""Actors of the schedules feature's own jobs (clean-up, retry of failed jobs)."""

from dramatiq import Broker

from furrsight.jobs.broker import declare_actor
from furrsight.jobs.runner import job_actor
from furrsight.schedules import housekeeping
from furrsight.settings import Settings


def register(broker: Broker, settings: Settings) -> None:
    declare_actor(broker, housekeeping.CLEANUP_KIND, job_actor(housekeeping.run_cleanup, settings))
    retry = housekeeping.run_retry_failed(broker)
    declare_actor(broker, housekeeping.RETRY_KIND, job_actor(retry, settings))
