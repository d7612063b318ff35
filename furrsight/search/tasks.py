"""Actors of search: the embedding and breed-tagging jobs run on the GPU queue."""

from dramatiq import Broker

from furrsight.jobs.broker import GPU_QUEUE, declare_actor
from furrsight.jobs.runner import Then, job_actor
from furrsight.search import duplicates, service
from furrsight.settings import Settings


def register(broker: Broker, settings: Settings, then_embed: Then | None = None) -> None:
    embed = job_actor(service.run_embed, settings, then=then_embed)
    declare_actor(broker, service.EMBED_KIND, embed, queue=GPU_QUEUE)
    declare_actor(broker, service.TAG_KIND, job_actor(service.run_tag_breeds, settings), queue=GPU_QUEUE)
    # clusters: numpy over stored vectors, no model: the default queue
    declare_actor(broker, duplicates.CLUSTER_KIND, job_actor(duplicates.run_clusters, settings))
