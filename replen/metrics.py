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
ALERTS = Counter("replen_alerts", "Alerts raised in this process, by kind", ["kind"])
JOB_RUNS = Counter("replen_job_runs", "Job runs, by job and status", ["job", "status"])
JOB_FAILURES = Counter("replen_job_failures", "Failed job runs, by job", ["job"])


class LedgerCollector:
    """Job runs and alerts from the database, so that any process serving /metrics shows
    what the scheduler (another process) did."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def collect(self):  # type: ignore[no-untyped-def]
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        from sqlalchemy import func, select
        from sqlalchemy.orm import Session

        from jobs.ledger import Alert, JobRun
        from replen.db import connect

        engine = connect(self.db_url)
        runs = CounterMetricFamily(
            "replen_ledger_job_runs", "Job runs recorded in the ledger", labels=["job", "status"]
        )
        last_ok = GaugeMetricFamily(
            "replen_job_last_success_timestamp_seconds",
            "When each job last succeeded",
            labels=["job"],
        )
        alerts = CounterMetricFamily(
            "replen_ledger_alerts", "Alert records in the database", labels=["kind"]
        )
        with Session(engine) as session:
            for job, status, n in session.execute(
                select(JobRun.job, JobRun.status, func.count()).group_by(JobRun.job, JobRun.status)
            ):
                runs.add_metric([job, status], n)
            for job, at in session.execute(
                select(JobRun.job, func.max(JobRun.finished_at))
                .where(JobRun.status == "succeeded")
                .group_by(JobRun.job)
            ):
                if at is not None:
                    last_ok.add_metric([job], at.timestamp())
            for kind, n in session.execute(select(Alert.kind, func.count()).group_by(Alert.kind)):
                alerts.add_metric([kind], n)
        yield runs
        yield last_ok
        yield alerts
        yield from self._outbox()

    def _outbox(self):  # type: ignore[no-untyped-def]
        """Deliveries to the ERP by status (a growing ``pending`` or any ``dead`` needs eyes)."""
        from prometheus_client.core import GaugeMetricFamily
        from sqlalchemy.exc import SQLAlchemyError

        from replenishment.erp.outbox import Outbox

        outbox = GaugeMetricFamily(
            "replen_erp_outbox", "PO versions in the ERP outbox, by status", labels=["status"]
        )
        try:
            counts = Outbox(self.db_url).counts()
        except SQLAlchemyError:  # not migrated yet: nothing to show
            return
        for status in ("pending", "delivered", "dead", "cancelled"):
            outbox.add_metric([status], counts.get(status, 0))
        yield outbox


def register_ledger(db_url: str) -> None:
    """Expose the ledger of ``db_url`` on the default registry (replacing an earlier one)."""
    from prometheus_client import REGISTRY

    global _collector
    if _collector is not None:
        REGISTRY.unregister(_collector)  # type: ignore[arg-type]
    _collector = LedgerCollector(db_url)
    REGISTRY.register(_collector)  # type: ignore[arg-type]


_collector: LedgerCollector | None = None
