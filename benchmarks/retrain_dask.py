"""The retrain on a Dask cluster vs in one process, same series, same run.

A LocalCluster on loopback (``--workers`` single-threaded worker processes) against the
local engine with as many statsforecast processes; both train the same synthetic series
in the same chunks. Reported: both times, whether the champions are identical, where the
Dask run spent its time (statsforecast on the cluster vs the driver's selection work), and
a projection for 1,000,000 series on N workers from those measured per-series costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, synthetic_history


class Timed:
    """An engine wrapper that sums the time spent in statsforecast cross-validation."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.name, self.cv_seconds = engine, engine.name, 0.0

    def cross_validation(self, sf: Any, df: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return self.engine.cross_validation(sf, df, **kw)
        finally:
            self.cv_seconds += time.perf_counter() - t

    def map(self, fn: Any, args: Any) -> Any:
        return self.engine.map(fn, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--data", type=Path, default=Path("/tmp/replen-bench"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from distributed import LocalCluster

    from forecasting.chunks import train_chunked
    from forecasting.engine import DaskEngine, LocalEngine
    from jobs.retrain import HistorySource

    path = synthetic_history(
        args.data / f"history-{args.series}x{args.days}.parquet", args.series, args.days
    )
    source = HistorySource.of_file(path)
    kw: dict[str, Any] = {"gated": False, "horizon": 28, "n_windows": 3}

    def train(engine: Any, n_jobs: int) -> tuple[float, Any]:
        t = time.perf_counter()
        out = train_chunked(
            source.keys, source.load, chunk_series=args.chunk, engine=engine, n_jobs=n_jobs, **kw
        )
        return time.perf_counter() - t, out

    local = Timed(LocalEngine())
    local_s, local_out = train(local, args.workers)
    with LocalCluster(
        n_workers=args.workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        dask = Timed(DaskEngine(cluster.scheduler_address))
        dask_s, dask_out = train(dask, 1)
        dask.engine.close()
    n = local_out.result.champions.height
    choice = ["store_id", "sku_id", "demand_class", "model"]
    same = dask_out.result.champions.select(choice).equals(
        local_out.result.champions.select(choice)
    )
    driver = (dask_s - dask.cv_seconds) / n  # seconds per series on the driver
    cluster_cpu = dask.cv_seconds * args.workers / n  # worker-seconds per series
    projection = {
        str(w): round((1_000_000 * driver + 1_000_000 * cluster_cpu / w) / 60, 1)
        for w in (2, 8, 32, 128)
    }
    figures = {
        "benchmark": "retrain_dask",
        "series": n,
        "workers": args.workers,
        "local_seconds": round(local_s, 1),
        "dask_seconds": round(dask_s, 1),
        "ratio_dask_vs_local": round(local_s / dask_s, 3),
        "same_champions": same,
        "dask_statsforecast_seconds": round(dask.cv_seconds, 1),
        "dask_driver_seconds": round(dask_s - dask.cv_seconds, 1),
        "local_statsforecast_seconds": round(local.cv_seconds, 1),
        "driver_ms_per_series": round(driver * 1000, 2),
        "cluster_worker_ms_per_series": round(cluster_cpu * 1000, 2),
        "projected_1m_minutes_by_workers": projection,
    }
    if not args.json:
        print(
            f"{n:,} series: local {local_s:.1f}s, Dask LocalCluster ({args.workers} workers) "
            f"{dask_s:.1f}s; same champions: {same}; 1M series on 32 workers ≈ "
            f"{projection['32']} min (driver-bound beyond that)"
        )
    emit(figures)


if __name__ == "__main__":
    main()
