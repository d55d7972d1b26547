"""Helpers shared by the benchmarks: timing, peak memory, the shared data location."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout; REPLEN_SHARED_DATA points elsewhere (e.g. a worktree).
SHARED = Path(os.environ.get("REPLEN_SHARED_DATA", ROOT.parent / "shared" / "data"))


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
    """The last line of every benchmark: one JSON object (a figure that could not be
    computed, NaN or infinite, is ``null``: strict JSON has no NaN)."""
    print(json.dumps(_finite(figures), default=str, allow_nan=False))


def _finite(value: Any) -> Any:
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


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


def synthetic_history(path: Path, series: int, days: int = 730, seed: int = 0) -> Path:
    """Write (once) a daily-sales Parquet file of ``series`` store×SKU series: smooth,
    erratic, intermittent and lumpy demand with weekly and yearly cycles, some series
    starting late. Written in slices, so any size fits in little memory."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    end = np.datetime64("2026-06-30")
    dates = np.arange(end - np.timedelta64(days - 1, "D"), end + np.timedelta64(1, "D"))
    t = np.arange(days)
    weekly = np.array([0.8, 0.9, 0.95, 1.0, 1.15, 1.35, 0.85])[(t + 3) % 7]
    yearly = 1 + 0.25 * np.sin(2 * np.pi * t / 365.25)
    skus_per_store = 1000
    tmp = path.with_name(path.name + ".tmp")
    schema = pa.schema(
        [
            ("store_id", pa.string()),
            ("sku_id", pa.string()),
            ("date", pa.date32()),
            ("units", pa.float64()),
        ]
    )
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, series, 2000):
            n = min(2000, series - start)
            ids = np.arange(start, start + n)
            kind = rng.choice(4, size=n, p=[0.4, 0.1, 0.3, 0.2])
            level = rng.uniform(2, 30, n)
            p_sale = rng.uniform(0.05, 0.3, n)
            lam = level[:, None] * weekly[None, :] * yearly[None, :]
            smooth = rng.poisson(lam)
            erratic = rng.negative_binomial(2, 2 / (2 + lam))
            sale = rng.random((n, days)) < p_sale[:, None]
            intermittent = sale * (1 + rng.poisson(1.0, (n, days)))
            lumpy = sale * rng.geometric(0.1, (n, days))
            units = np.choose(kind[:, None], [smooth, erratic, intermittent, lumpy])
            first = np.where(rng.random(n) < 0.05, rng.integers(days - 60, days - 10, n), 0)
            keep = t[None, :] >= first[:, None]
            rows = np.nonzero(keep)
            store = np.char.add("S", np.char.zfill((ids // skus_per_store).astype(str), 4))
            sku = np.char.add("SKU", np.char.zfill((ids % skus_per_store).astype(str), 5))
            table = pa.table(
                {
                    "store_id": store[rows[0]],
                    "sku_id": sku[rows[0]],
                    "date": dates[rows[1]],
                    "units": units[rows].astype(np.float64),
                },
                schema=schema,
            )
            writer.write_table(table)
    tmp.replace(path)
    return path


def synthetic_lake(
    data_dir: Path,
    lines: int,
    *,
    batch_lines: int = 250_000,
    stores: int = 50,
    skus: int = 400,
    days: int = 730,
    seed: int = 0,
) -> Path:
    """Fill (once) the POS lake of ``data_dir`` with ``lines`` lines over the ``days`` days
    before today, committed through the real lake (validation, deduplication, fsync) in
    batches of ``batch_lines``. Returns the data directory."""
    import datetime as dt

    import numpy as np
    import polars as pl

    from features.events import validate_events
    from features.lake import Lake

    done = data_dir / "lake-lines.txt"
    if done.exists() and int(done.read_text()) == lines:
        return data_dir
    lake = Lake(data_dir / "lake")
    rng = np.random.default_rng(seed)
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start_us = int((today - dt.timedelta(days=days)).timestamp() * 1e6)
    span_us = days * 86_400 * 1_000_000
    for b, first in enumerate(range(0, lines, batch_lines)):
        n = min(batch_lines, lines - first)
        k = rng.integers(0, stores * skus, n)
        frame = pl.DataFrame(
            {
                "_k": k,
                "sold_at": pl.Series(np.sort(rng.integers(0, span_us, n)) + start_us).cast(
                    pl.Datetime("us", "UTC")
                ),
                "quantity": np.where(rng.random(n) < 0.02, -1.0, rng.integers(1, 4, n)),
                "unit_price": np.full(n, 2.5),
            }
        ).select(
            pl.format("L{}-{}", pl.lit(b), pl.int_range(pl.len())).alias("event_id"),
            pl.format("S{}", (pl.col("_k") // skus).cast(pl.String).str.zfill(3)).alias("store_id"),
            pl.format("SKU{}", (pl.col("_k") % skus).cast(pl.String).str.zfill(5)).alias("sku_id"),
            "sold_at",
            "quantity",
            "unit_price",
        )
        report = lake.append_events(validate_events(frame))
        assert report.accepted == n, report
    done.write_text(str(lines))
    return data_dir
