"""Cost of one velocity push as the lake grows: the incremental state vs rescanning the lake.

For each lake size, one new batch of 50 POS lines (50 store×SKUs) is committed, then its
velocity is computed and pushed online two ways, same run, same lake, same Feast store:
- rescan (the baseline; Replen before this change): read the last 40 days of the lake for
  the touched keys and scan the whole lake for their last sale;
- incremental (now): fold the new batch into the pusher's state, compute from the state.
Reported: median milliseconds of each per lake size, and how each grows with the lake.
Lakes are generated once under --data (not in the repository).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from _common import emit, synthetic_lake

KEYS = ["store_id", "sku_id"]


def rescan_velocity(lake, keys: pl.DataFrame, as_of: date) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """The previous push path: velocity of ``keys`` recomputed from lake scans."""
    from features.sales import daily_sales, velocity

    since = as_of - timedelta(days=40)
    events = (
        lake.scan_events(since=since)
        .filter(pl.col("sold_at") >= datetime.combine(since, dtime.min, UTC))
        .join(keys.lazy(), on=KEYS, how="semi")
    )
    fresh = velocity(daily_sales(events, end=as_of), as_of)
    scope = lake.scan_events().select(KEYS).unique().join(keys.lazy(), on=KEYS, how="semi")
    idle = scope.collect().join(fresh.select(KEYS), on=KEYS, how="anti")
    if idle.is_empty():
        return fresh
    last = (
        lake.scan_events()
        .join(idle.lazy(), on=KEYS, how="semi")
        .filter(pl.col("quantity") > 0)
        .group_by(KEYS)
        .agg(pl.col("sold_at").max().dt.date().alias("_last"))
        .collect()
    )
    zeros = idle.join(last, on=KEYS, how="left").select(
        *KEYS,
        pl.lit(as_of).alias("as_of"),
        pl.lit(0.0).alias("units_1d"),
        pl.lit(0.0).alias("units_7d"),
        pl.lit(0.0).alias("units_28d"),
        (pl.lit(as_of) - pl.col("_last")).dt.total_days().alias("days_since_last_sale"),
    )
    return pl.concat([fresh.select(zeros.columns), zeros], how="vertical_relaxed")


def measure(data_dir: Path, repeats: int) -> dict:
    from features.events import validate_events
    from jobs.runtime import Runtime
    from jobs.velocity import VelocitySync
    from replen.settings import Settings

    rt = Runtime(Settings(data_dir=data_dir, mlflow_dir=data_dir / "mlflow"))
    lines = rt.lake.scan_events().select(pl.len()).collect().item()
    sync = VelocitySync(rt)
    t = time.perf_counter()
    sync.sync()  # the first sync folds the whole lake once (and pushes every key)
    first = time.perf_counter() - t
    sync.save()
    newest = rt.lake.newest_sold_at()
    assert newest is not None
    incremental, rescan = [], []
    for r in range(repeats + 1):  # the first round warms up (imports, caches): not counted
        batch = pl.DataFrame(
            {
                "event_id": [f"push-{time.time_ns()}-{i}" for i in range(50)],
                "store_id": [f"S{i % 50:03d}" for i in range(50)],
                "sku_id": [f"SKU{(i * 7 + r) % 400:05d}" for i in range(50)],
                "sold_at": [newest - timedelta(minutes=i) for i in range(50)],
                "quantity": [1.0] * 50,
                "unit_price": [2.5] * 50,
            }
        )
        rt.lake.append_events(validate_events(batch))
        keys = batch.select(KEYS).unique()
        t = time.perf_counter()
        report = sync.sync()
        if r:
            incremental.append(time.perf_counter() - t)
        assert report.batches == 1 and not report.full
        t = time.perf_counter()
        rows = rescan_velocity(rt.lake, keys, newest.date())
        rt.features.push_online(rows)
        if r:
            rescan.append(time.perf_counter() - t)
        assert (
            rows.sort(KEYS)
            .select("units_28d")
            .equals(sync.state.velocity(keys).sort(KEYS).select("units_28d"))
        ), "the two ways disagree"
    return {
        "lines": lines,
        "first_sync_s": round(first, 2),
        "incremental_ms": round(statistics.median(incremental) * 1000, 1),
        "rescan_ms": round(statistics.median(rescan) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, nargs="+", default=[260_000, 5_900_000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data", type=Path, default=Path("/tmp/replen-bench"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for n in args.lines:
        data_dir = synthetic_lake(args.data / f"lake-{n}", n, batch_lines=min(n, 250_000))
        rows.append(measure(data_dir, args.repeats))
    small, big = rows[0], rows[-1]
    figures = {
        "benchmark": "push_cost",
        "sizes": rows,
        "growth_incremental": round(big["incremental_ms"] / small["incremental_ms"], 2),
        "growth_rescan": round(big["rescan_ms"] / small["rescan_ms"], 2),
        "lake_growth": round(big["lines"] / small["lines"], 1),
    }
    if not args.json:
        for r in rows:
            print(
                f"{r['lines']:>12,} lines: incremental {r['incremental_ms']} ms, rescan "
                f"{r['rescan_ms']} ms (first sync {r['first_sync_s']} s)"
            )
    emit(figures)


if __name__ == "__main__":
    main()
