"""Prometheus metrics of the Replen process (served on /metrics)."""

from __future__ import annotations

import os

# Feast sets PROMETHEUS_MULTIPROC_DIR when it is imported; choose the value backend before.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not os.path.isdir(
    os.environ["PROMETHEUS_MULTIPROC_DIR"]
):
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR")

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ALERTS",
    "INGEST_SECONDS",
    "JOB_FAILURES",
    "JOB_RUNS",
    "POS_LINES",
    "REJECT_RATIO",
    "STORE_LAG",
]

POS_LINES = Counter("replen_pos_lines", "POS lines received, by outcome", ["outcome"])
INGEST_SECONDS = Histogram(
    "replen_pos_batch_seconds",
    "Time from request to durable acknowledgement of a POS batch",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STORE_LAG = Gauge("replen_store_lag_seconds", "Age of the newest POS event per store", ["store_id"])
REJECT_RATIO = Gauge("replen_pos_reject_ratio", "Rejected / received POS lines over the window")
ALERTS = Counter("replen_alerts", "Alerts raised, by kind", ["kind"])
JOB_RUNS = Counter("replen_job_runs", "Job runs, by job and status", ["job", "status"])
JOB_FAILURES = Counter("replen_job_failures", "Failed job runs, by job", ["job"])
