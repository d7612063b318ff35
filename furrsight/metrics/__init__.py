"""Prometheus metrics: the counters and histograms bumped where events happen, the folder that
lets web and worker processes report together, and the text exposition served at ``/metrics``.

It knows no feature: the scrape-time gauges (jobs, pairs, queue depth, database size) are
computed by the features' services and passed in by ``app.py``.
"""
