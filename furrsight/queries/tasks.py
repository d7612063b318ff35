"""Actors of the queries feature (generation loads an LLM: the GPU queue)."""

from dramatiq import Broker

from furrsight.jobs.broker import GPU_QUEUE, declare_actor
from furrsight.jobs.runner import job_actor
from furrsight.queries import service
from furrsight.settings import Settings


def register(broker: Broker, settings: Settings) -> None:
    declare_actor(broker, service.GENERATE_KIND, job_actor(service.run_generate, settings), queue=GPU_QUEUE)
