"""The scheduled jobs: module-level functions of a Runtime, each returning summary numbers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from jobs.runtime import Runtime

__all__ = ["JOBS", "describe", "job_table"]


def refresh(rt: Runtime) -> dict[str, Any]:
    """Recompute daily sales and velocity from the lake; materialize the newest day online."""
    from jobs.refresh import refresh_features

    return refresh_features(rt).to_dict()


def retrain(rt: Runtime) -> dict[str, Any]:
    """Weekly retrain; the champion alias moves only if the new version wins."""
    from jobs.retrain import retrain as run

    return run(rt).to_dict()


def replenish(rt: Runtime) -> dict[str, Any]:
    """Forecast with the champion and replace today's unreviewed PO suggestions.

    On failure, the latest suggestions stay and are marked stale.
    """
    from jobs.replenish import forecast_and_plan

    try:
        return forecast_and_plan(rt).to_dict()
    except Exception:
        rt.orders.mark_stale()
        raise


def monitor(rt: Runtime) -> dict[str, Any]:
    """POS freshness per store and reject ratio; alerts past thresholds."""
    from jobs.monitor import run_monitor

    report = run_monitor(rt)
    return {
        "stores": len(report.stores),
        "alerts": len(report.alerts),
        "reject_ratio": report.reject_ratio,
    }


def deliver(rt: Runtime) -> dict[str, Any]:
    """Send approved POs to the ERP (outbox): one pass; failures back off, 4xx dead-letter."""
    from jobs.erp import deliver_once

    return deliver_once(rt).to_dict()


def probe(rt: Runtime) -> dict[str, Any]:
    """Scheduler self-test: waits ``probe_seconds`` and reports when it ran."""
    started = datetime.now(UTC)
    time.sleep(rt.settings.probe_seconds)
    return {"started": started.isoformat(), "seconds": rt.settings.probe_seconds}


JOBS: dict[str, Callable[[Runtime], dict[str, Any]]] = {
    "refresh": refresh,
    "retrain": retrain,
    "replenish": replenish,
    "monitor": monitor,
    "deliver": deliver,
    "probe": probe,
}


def describe(name: str) -> str:
    """The first clause of the job's docstring (fits one table row)."""
    doc = (JOBS[name].__doc__ or "").strip().splitlines()
    return doc[0].split(";")[0].split(":")[0].rstrip(".") if doc else ""


def job_table(rt: Runtime) -> list[dict[str, Any]]:
    """Every job with its schedule and its last recorded run."""
    rows = []
    for name in JOBS:
        last = rt.ledger.history(name, limit=1)
        rows.append(
            {
                "job": name,
                "schedule": rt.settings.schedules.get(name),
                "last_slot": last[0]["slot"] if last else None,
                "last_status": last[0]["status"] if last else None,
                "description": describe(name),
            }
        )
    return rows
