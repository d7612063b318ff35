"""The text ``/metrics`` answers: the event metrics of every process, then the gauges of now.

Event metrics come from the multiprocess folders when ``PROMETHEUS_MULTIPROC_DIR`` is set (web
and workers together), else from this process's default registry (a test, or a bare app).
Gauges are not stored anywhere: ``app.py`` computes them at scrape time through the features'
services and hands them in as metric families.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from furrsight.metrics.folder import ENV, metrics_root


def gauge(name: str, documentation: str, labels: list[str], values: Mapping[Any, float]) -> Metric:
    """A gauge family: one sample per tuple of label values."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


class _Folders(Collector):
    """Every role's folder under ``<data>/run/metrics`` merged, like ``MultiProcessCollector``
    does for one folder (counters of processes that have exited are kept: totals never drop)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self) -> Iterable[Metric]:
        found = set(self.root.glob("*/*.db")) | set(Path(os.environ.get(ENV) or self.root).glob("*.db"))
        files = sorted({str(p.resolve()) for p in found})  # also a folder set by hand outside the data dir
        return MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-any-return]


def exposition(data_path: Path, gauges: Iterable[Metric]) -> bytes:
    """The Prometheus text format of the event metrics and ``gauges`` (blocking: reads files)."""
    events: CollectorRegistry = REGISTRY
    if os.environ.get(ENV):
        events = CollectorRegistry(auto_describe=False)
        events.register(_Folders(metrics_root(data_path)))
    now = CollectorRegistry(auto_describe=False)
    now.register(_Fixed(gauges))
    return generate_latest(events) + generate_latest(now)
