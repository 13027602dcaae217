"""Prometheus metrics of the ratelimit process (served on ARAGORA_RATELIMIT_METRICS_PORT).

The gateway counts the 429s it returns (``rate_limit_hits_total``); this process counts the
decisions it makes, how long each took and which backend made it.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

checks = Counter(
    "aragora_ratelimit_checks",
    "Rate-limit decisions, by endpoint class, outcome and backend",
    ["endpoint_class", "outcome", "backend"],
)
check_seconds = Histogram(
    "aragora_ratelimit_check_seconds",
    "Time to decide one check (Redis script or in memory), seconds",
    ["backend"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
