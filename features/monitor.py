"""Data freshness and quality of the POS feed: lag per store, rejected/received ratio."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

__all__ = ["freshness", "reject_ratio"]


def freshness(events: pl.LazyFrame, now: datetime) -> pl.DataFrame:
    """Per store: the newest event time and its lag behind ``now`` in seconds."""
    return (
        events.group_by("store_id")
        .agg(pl.col("sold_at").max().alias("newest"))
        .with_columns(
            ((pl.lit(now) - pl.col("newest")).dt.total_microseconds() / 1e6).alias("lag_seconds")
        )
        .sort("store_id")
        .collect()
    )


def reject_ratio(
    batches: list[dict[str, object]], now: datetime, window: timedelta
) -> dict[str, float]:
    """``received``, ``rejected`` and their ratio over POS batches committed in the window."""
    since = now - window
    received = rejected = 0
    for batch in batches:
        if batch.get("kind") != "pos":
            continue
        committed = datetime.fromisoformat(str(batch["committed_at"]))
        if committed < since:
            continue
        summary = batch["summary"]
        assert isinstance(summary, dict)
        received += int(summary["received"])
        rejected += int(summary["rejected"])
    ratio = rejected / received if received else 0.0
    return {"received": float(received), "rejected": float(rejected), "ratio": ratio}
