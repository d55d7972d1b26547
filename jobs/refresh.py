"""Feature refresh: POS batches into the lake, daily sales and velocity into Feast."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta

import polars as pl

from features.events import validate_events
from features.lake import BatchReport
from features.sales import daily_sales, velocity, velocity_history
from jobs.runtime import Runtime

__all__ = ["FeatureRefresh", "ingest_inventory", "ingest_pos", "push_velocity", "refresh_features"]


def ingest_pos(rt: Runtime, raw: pl.DataFrame, *, push: bool = True) -> BatchReport:
    """Validate and commit one POS batch, then push the touched keys' velocity online."""
    known_stores, known_skus = _known_keys(rt)
    validated = validate_events(raw)
    report = rt.lake.append_events(validated, known_stores, known_skus)
    if push and report.accepted:
        push_velocity(rt, validated.accepted.select("store_id", "sku_id").unique())
    return report


def ingest_inventory(rt: Runtime, snapshots: pl.DataFrame) -> int:
    return rt.lake.append_inventory(snapshots)


def push_velocity(rt: Runtime, keys: pl.DataFrame) -> int:
    """Recompute velocity of ``keys`` from the lake and push it to the online store."""
    events = rt.lake.scan_events().join(keys.lazy(), on=["store_id", "sku_id"], how="semi")
    daily = daily_sales(events, end=datetime.now(UTC).date())
    if daily.is_empty():
        return 0
    rt.features.apply()
    return rt.features.push_online(velocity(daily))


@dataclass(frozen=True)
class FeatureRefresh:
    series: int
    days: int
    velocity_rows: int
    as_of: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def refresh_features(rt: Runtime, history: pl.DataFrame | None = None) -> FeatureRefresh:
    """Rewrite the offline velocity table from the lake and materialize the newest day online."""
    daily = history if history is not None else rt.history()
    if daily.is_empty():
        raise ValueError("the POS lake is empty: ingest sales first (`replen ingest pos FILE`)")
    hist = velocity_history(daily)
    rt.features.apply()
    rt.features.write_offline(hist)
    last = daily["date"].max()
    start = datetime.combine(last, time.min, tzinfo=UTC)  # type: ignore[arg-type]
    rt.features.materialize(start, start + timedelta(days=1))
    return FeatureRefresh(
        series=daily.select("store_id", "sku_id").n_unique(),
        days=daily["date"].n_unique(),
        velocity_rows=hist.height,
        as_of=str(last),
    )


def _known_keys(rt: Runtime) -> tuple[set[str] | None, set[str] | None]:
    try:
        items = rt.load_master("items")
        stock = rt.load_master("stock")
    except FileNotFoundError:
        return None, None
    return set(stock["store_id"].to_list()), set(items["sku_id"].to_list())
