"""Weekly retrain at scale on synthetic series: series/s on this machine and peak memory,
with a linear projection to 100,000 series. Baseline in the same run: AutoETS alone on a
sample of the same series (the usual "one good model everywhere" choice), scaled per series.
Aim: >= 15 series/s for the full retrain (classify, backtest, select) on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--skus", type=int, default=100)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--ets-sample", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import json
    import subprocess
    import tempfile

    import polars as pl
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    from features.sales import daily_sales
    from forecasting.history import to_training_frame
    from replen.synthetic import generate

    def measure(stores: int) -> tuple[int, dict, pl.DataFrame]:
        """Train in a fresh process so that its peak memory is the retrain's alone."""
        chain = generate(stores=stores, skus=args.skus, days=args.days, seed=11)
        frame = daily_sales(chain.pos.lazy(), chain.inventory)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "daily.parquet"
            frame.write_parquet(path)
            code = (
                "import json,sys,time,polars as pl\n"
                "from forecasting.train import train\n"
                f"d=pl.read_parquet({str(path)!r})\n"
                "t=time.perf_counter()\n"
                f"r=train(d,horizon=28,n_windows=3,n_jobs={args.jobs})\n"
                "s=time.perf_counter()-t\n"
                # VmHWM, not ru_maxrss: the latter survives exec and would report the
                # parent's peak at fork time.
                "hwm=[int(x.split()[1]) for x in open('/proc/self/status') "
                "if x.startswith('VmHWM')][0]/1024\n"
                "print(json.dumps({'seconds':s,'peak':hwm,'classes':dict(r.champions"
                ".group_by('demand_class').len().iter_rows())}))\n"
            )
            proc = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parents[1],
            )
        return (
            frame.select("store_id", "sku_id").n_unique(),
            json.loads(proc.stdout.strip().splitlines()[-1]),
            frame,
        )

    small_n, small, _ = measure(max(1, args.stores // 4))
    n, fit, daily = measure(args.stores)
    seconds = fit["seconds"]
    rate = n / seconds
    per_series_mb = (fit["peak"] - small["peak"]) / max(n - small_n, 1)

    tdf = to_training_frame(daily)
    ids = tdf["unique_id"].unique().sort().head(args.ets_sample)
    sample = tdf.join(ids.to_frame(), on="unique_id")
    t1 = time.perf_counter()
    StatsForecast(models=[AutoETS(season_length=7)], freq="1d", n_jobs=args.jobs).forecast(
        df=sample, h=28
    )
    ets_rate = ids.len() / (time.perf_counter() - t1)
    peak = fit["peak"]
    figures = {
        "benchmark": "retrain_scale",
        "series": n,
        "days": args.days,
        "retrain_seconds": round(seconds, 2),
        "series_per_s": round(rate, 1),
        "autoets_fit_only_series_per_s": round(ets_rate, 2),
        "ratio_vs_autoets": round(rate / ets_rate, 1),
        "peak_rss_mb": round(peak),
        "fixed_mb": round(fit["peak"] - per_series_mb * n),
        "mb_per_1000_series": round(per_series_mb * 1000, 1),
        "projected_100k_peak_gb": round((fit["peak"] + per_series_mb * (100_000 - n)) / 1024, 1),
        "projected_100k_hours": round(100_000 / rate / 3600, 2),
        "classes": fit["classes"],
    }
    if not args.json:
        print(
            f"{n} series in {seconds:.1f}s = {rate:.1f} series/s (aim >= 15); AutoETS fit "
            f"alone {ets_rate:.2f} series/s; 100k series ≈ {figures['projected_100k_hours']} h"
            f" on {args.jobs} cores; retrain peak {peak:.0f} MB"
        )
    emit(figures)


if __name__ == "__main__":
    main()
