"""The event metrics, bumped where each event happens (runner, ingest, scraping, inference, web).

Importing this imports prometheus_client: in a process that reports to ``/metrics`` together
with others, ``folder.prepare`` must have run first (the cli does it before anything starts).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Seconds: from a cached thumbnail to a VLM answer on CPU.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

JOBS_FINISHED = Counter("furrsight_jobs_finished", "Jobs finished, by kind and final status.", ["kind", "status"])
IMAGES_INGESTED = Counter(
    "furrsight_images_ingested", "Files taken in, by outcome (new image or duplicate of a stored one).", ["outcome"]
)
IMAGES_REFUSED = Counter("furrsight_images_refused", "Files refused by ingest, by reason code.", ["reason"])
SCRAPE_FETCHES = Counter(
    "furrsight_scrape_fetches",
    "HTTP fetches by scrapers, by result (ok, or the fetch error's reason code such as http_404).",
    ["result"],
)
INFERENCE_SECONDS = Histogram(
    "furrsight_inference_seconds", "Time of one model call (a batch or a chat answer).", ["model"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
HTTP_SECONDS = Histogram(
    "furrsight_http_request_seconds", "HTTP request latency, by method, route template and status.",
    ["method", "route", "status"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
