"""The Dramatiq broker on Valkey, and how a feature declares the actor that runs its jobs.

Actors are declared *on a broker object* by each feature's ``tasks.register(broker)``, called by
``app.py`` and ``worker.py`` after ``create_broker``: nothing binds to a global broker at import
time, so the order of imports cannot break it and tests build their own.
"""

from __future__ import annotations

from typing import Awaitable, Callable

import dramatiq
import redis
import valkey
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
)
from dramatiq.middleware.asyncio import AsyncIO

from furrsight.settings import Settings

DEFAULT_QUEUE = "default"
GPU_QUEUE = "gpu"  # model-bound actors: one process, one thread, so each model is loaded once


class BrokerNotConfigured(RuntimeError):
    pass


def create_broker(settings: Settings) -> RedisBroker:
    """A RedisBroker talking to Valkey (or Redis), with short heartbeats.

    dramatiq catches only redis-py's exception types when the server restarts; handed a valkey
    client it recovers too but logs CRITICAL tracebacks, so the broker itself gets a redis-py
    client (same protocol). Our own code talks to Valkey through ``valkey`` (``valkey_client``).
    The TimeLimit middleware is left out on purpose: an import of 100k images may run for hours,
    and cancellation is cooperative (checked between items), not a thread interrupt.
    """
    if not settings.broker_url:
        raise BrokerNotConfigured("no broker URL: set FURRSIGHT_BROKER_URL or use `furrsight up`")
    client = redis.Redis.from_url(settings.broker_url)
    middleware = [
        AgeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=0),
        CurrentMessage(),
        AsyncIO(),
    ]
    broker = RedisBroker(
        client=client,
        namespace=settings.broker_namespace,
        middleware=middleware,
        heartbeat_timeout=settings.jobs.heartbeat_timeout_ms,
        maintenance_chance=settings.jobs.maintenance_chance,
    )
    broker.declare_queue(DEFAULT_QUEUE)
    broker.declare_queue(GPU_QUEUE)
    return broker


def valkey_client(settings: Settings) -> valkey.asyncio.Valkey:
    return valkey.asyncio.Valkey.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)


def declare_actor(
    broker: dramatiq.Broker,
    kind: str,
    fn: Callable[[int, str], Awaitable[None]],
    queue: str = DEFAULT_QUEUE,
) -> dramatiq.Actor:  # type: ignore[type-arg]
    """Declare ``fn(job_id, run_token)`` as the actor named ``kind`` on ``broker``."""
    return dramatiq.actor(actor_name=kind, queue_name=queue, broker=broker, max_retries=0)(fn)


async def workers_alive(client: valkey.asyncio.Valkey, settings: Settings) -> int:
    """Worker processes whose broker heartbeat is fresher than the heartbeat timeout."""
    now_ms = int((await client.time())[0]) * 1000
    key = f"{settings.broker_namespace}:__heartbeats__"
    return int(await client.zcount(key, now_ms - settings.jobs.heartbeat_timeout_ms, "+inf"))
