"""Freshness and quality monitor: lag per store, reject ratio, alerts, Prometheus gauges."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from features.monitor import freshness, reject_ratio
from jobs.runtime import Runtime

__all__ = ["MonitorReport", "run_monitor"]


@dataclass
class MonitorReport:
    checked_at: str
    stores: list[dict[str, Any]]
    window_minutes: float
    received: int
    rejected: int
    reject_ratio: float
    alerts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def run_monitor(rt: Runtime, now: datetime | None = None, *, record: bool = True) -> MonitorReport:
    """Measure freshness and quality; raise an alert record for each breached threshold."""
    from replen.metrics import ALERTS, REJECT_RATIO, STORE_LAG

    s = rt.settings
    now = now or datetime.now(UTC)
    lags = freshness(rt.lake.scan_events(), now)
    window = timedelta(minutes=s.monitor_window_minutes)
    quality = reject_ratio(rt.lake.batches(), now, window)
    alerts: list[str] = []
    store = rt.alerts if record else None
    for row in lags.iter_rows(named=True):
        STORE_LAG.labels(row["store_id"]).set(row["lag_seconds"])
        if row["lag_seconds"] > s.freshness_max_lag_seconds:
            msg = (
                f"store {row['store_id']}: newest POS event is {row['lag_seconds']:.0f}s old "
                f"(threshold {s.freshness_max_lag_seconds:.0f}s)"
            )
            alerts.append(msg)
            if store:
                store.raise_alert(
                    "freshness",
                    row["store_id"],
                    msg,
                    row["lag_seconds"],
                    s.freshness_max_lag_seconds,
                )
                ALERTS.labels("freshness").inc()
    REJECT_RATIO.set(quality["ratio"])
    if quality["received"] and quality["ratio"] > s.reject_ratio_max:
        msg = (
            f"{quality['rejected']:.0f} of {quality['received']:.0f} POS lines rejected in the "
            f"last {s.monitor_window_minutes:g} min ({quality['ratio']:.2%} > "
            f"{s.reject_ratio_max:.2%})"
        )
        alerts.append(msg)
        if store:
            store.raise_alert("quality", "pos", msg, quality["ratio"], s.reject_ratio_max)
            ALERTS.labels("quality").inc()
    return MonitorReport(
        checked_at=now.isoformat(),
        stores=[
            {
                "store_id": r["store_id"],
                "newest": r["newest"].isoformat(),
                "lag_seconds": round(r["lag_seconds"], 3),
            }
            for r in lags.iter_rows(named=True)
        ],
        window_minutes=s.monitor_window_minutes,
        received=int(quality["received"]),
        rejected=int(quality["rejected"]),
        reject_ratio=quality["ratio"],
        alerts=alerts,
    )
