"""Actors of pairs: mining on the default queue, analysis on the GPU queue (it loads models)."""

from dramatiq import Broker

from furrsight.jobs.broker import GPU_QUEUE, declare_actor
from furrsight.jobs.runner import Then, job_actor
from furrsight.pairs import analysis, mining
from furrsight.settings import Settings


def register(broker: Broker, settings: Settings, then_mine: Then | None = None) -> None:
    declare_actor(broker, mining.MINE_KIND, job_actor(mining.run_mine, settings, then=then_mine))
    declare_actor(broker, analysis.ANALYSE_KIND, job_actor(analysis.run_analyse, settings), queue=GPU_QUEUE)
