"""Each worker process says who it is in Valkey: ``<namespace>:workers:<broker_id>``.

Dramatiq's heartbeats (the zset ``<namespace>:__heartbeats__``) say only *that* a broker id is
alive; which queues it serves, its pid and host, and the models it holds are not in them. The
``WorkerRecord`` middleware writes them in a small hash when the worker boots and refreshes it
(with the models resident) a few times per heartbeat timeout; a worker that stops cleanly
deletes it. A worker that is killed leaves its hash behind, so ``status`` can name it as dead;
the hash expires after ``status.forget_dead_worker_s``. ``seen_ms`` is the last refresh: the
broker's maintenance drops a dead worker's heartbeat from the zset, and then it tells how long
ago the worker fell silent.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

logger = logging.getLogger(__name__)


def record_key(namespace: str, broker_id: str) -> str:
    return f"{namespace}:workers:{broker_id}"


class WorkerRecord(Middleware):
    def __init__(self, namespace: str, keep_s: int, interval_s: float, models: Callable[[], list[str]]) -> None:
        self.namespace = namespace
        self.keep_s = keep_s
        self.interval_s = interval_s
        self.models = models
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fields: dict[str, str] = {}

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        assert isinstance(broker, RedisBroker), "worker records live in the broker's Valkey"
        queues = sorted(worker.consumer_whitelist or broker.get_declared_queues())
        self._fields = {
            "queues": ",".join(q for q in queues if not q.endswith(".DQ")),
            "pid": str(os.getpid()),
            "host": socket.gethostname(),
            "started": str(time.time()),
        }
        self._write(broker)
        self._thread = threading.Thread(target=self._run, args=(broker,), name="worker-record", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        assert isinstance(broker, RedisBroker)
        try:
            broker.client.delete(record_key(self.namespace, broker.broker_id))
        except Exception:  # the broker is gone: the record expires on its own
            logger.warning("could not remove this worker's record", exc_info=True)

    def _write(self, broker: RedisBroker) -> None:
        key = record_key(self.namespace, broker.broker_id)
        fields = {**self._fields, "models": json.dumps(self.models()), "seen_ms": str(int(time.time() * 1000))}
        pipe = broker.client.pipeline()
        pipe.hset(key, items=[part for pair in fields.items() for part in pair])  # flat: field, value, …
        pipe.expire(key, self.keep_s)
        pipe.execute()

    def _run(self, broker: RedisBroker) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._write(broker)
            except Exception:  # the broker restarts: try again next time
                logger.debug("could not refresh this worker's record", exc_info=True)
