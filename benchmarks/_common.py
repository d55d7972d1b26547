"""Helpers shared by the benchmarks: timing, peak memory, the shared data location."""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (statsforecast's worker pools):
    a cost measure that a busy shared machine disturbs far less than wall time."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def need_shared(path: Path) -> None:
    if not path.exists():
        print(json.dumps({"skipped": f"{path} not found (../shared/data is absent)"}))
        sys.exit(0)


def emit(figures: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object."""
    print(json.dumps(figures, default=str))


def load_m5(path: Path, series: int | None = None, seed: int = 0, covariates: bool = False) -> Any:
    """M5 subset as ``store_id, sku_id, date, units, price``; each series starts at its first
    sale (as the M5 scale does); ``series`` samples that many series. ``covariates`` adds
    what the feature store would hand over: ``department, category`` and, from the M5
    calendar next to the file, ``event, event_type`` and ``payday`` (the store's state's
    SNAP days)."""
    import polars as pl

    raw = pl.read_csv(
        path,
        columns=[
            "item_id",
            "dept_id",
            "cat_id",
            "store_id",
            "state_id",
            "date",
            "sales",
            "sell_price",
        ],
        schema_overrides={"sell_price": pl.Float64},
    )
    frame = raw.select(
        "store_id",
        pl.col("item_id").alias("sku_id"),
        pl.col("date").str.to_date(),
        pl.col("sales").cast(pl.Float64).alias("units"),
        pl.col("sell_price").alias("price"),
        *(
            [pl.col("dept_id").alias("department"), pl.col("cat_id").alias("category"), "state_id"]
            if covariates
            else []
        ),
    )
    if covariates:
        cal = pl.read_csv(path.parent / "calendar.csv.gz").select(
            pl.col("date").str.to_date(),
            pl.col("event_type_1").is_not_null().cast(pl.Float64).alias("event"),
            pl.col("event_type_1").alias("event_type"),
            *[pl.col(f"snap_{s}").cast(pl.Float64) for s in ("CA", "TX", "WI")],
        )
        snap = pl.coalesce(
            [pl.when(pl.col("state_id") == s).then(pl.col(f"snap_{s}")) for s in ("CA", "TX", "WI")]
        )
        frame = (
            frame.join(cal, on="date", how="left")
            .with_columns(snap.alias("payday"))
            .drop("state_id", "snap_CA", "snap_TX", "snap_WI")
        )
    if series:
        keys = frame.select("store_id", "sku_id").unique().sort("store_id", "sku_id")
        frame = frame.join(keys.sample(series, seed=seed), on=["store_id", "sku_id"])
    first = (
        frame.filter(pl.col("units") > 0)
        .group_by("store_id", "sku_id")
        .agg(pl.col("date").min().alias("first"))
    )
    return (
        frame.join(first, on=["store_id", "sku_id"])
        .filter(pl.col("date") >= pl.col("first"))
        .drop("first")
        .sort("store_id", "sku_id", "date")
    )
