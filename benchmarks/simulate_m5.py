"""Policy simulation on the M5 subset: forecast-driven (R, S) vs static min/max at 95% fill.

Replays the last 182 days of the 280 series day by day (lead time 3 days, weekly review,
lost sales, no peeking: each review forecasts from the sales known that day), sweeping the
service level of (R, S) and the cover multiplier of min/max, and compares the average
inventory each needs to reach the same fill rate. Aim: (R, S) needs >= 20% less inventory.
Value = units × sell price (last known price), since the data has no costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from _common import ROOT, SHARED, emit, load_m5, need_shared, peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=SHARED / "m5_subset" / "sales.csv.gz")
    parser.add_argument("--days", type=int, default=182)
    parser.add_argument("--lead-time", type=int, default=3)
    parser.add_argument("--review", type=int, default=7)
    parser.add_argument("--fill-target", type=float, default=0.95)
    parser.add_argument(
        "--plot", type=Path, default=ROOT / "benchmarks" / "results" / "tradeoff_m5.png"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    need_shared(args.data)

    from jobs.simulation import run_simulation

    history = load_m5(args.data).rename({"price": "sell_price"})
    price = (
        history.sort("date")
        .group_by("store_id", "sku_id")
        .agg(pl.col("sell_price").drop_nulls().last().fill_null(1.0))
        .sort("store_id", "sku_id")["sell_price"]
        .to_numpy()
    )
    started = time.perf_counter()
    report = run_simulation(
        history.drop("sell_price"),
        periods=args.days,
        lead_time=args.lead_time,
        review_period=args.review,
        unit_cost=price,
        fill_target=args.fill_target,
        plot=args.plot,
    )
    seconds = time.perf_counter() - started
    if not args.json:
        print(
            f"{'policy':<8}{'setting':>9}{'fill':>8}{'CSL':>8}{'on hand €':>12}{'units':>9}"
            f"{'stockout d':>11}{'orders':>8}"
        )
        for r in report.runs:
            print(
                f"{r['policy']:<8}{r['setting']:>9.3f}{r['fill_rate']:>8.3f}"
                f"{r['cycle_service_level']:>8.3f}{r['avg_on_hand_value']:>12.1f}"
                f"{r['avg_on_hand_units']:>9.1f}{r['stockout_days']:>11}{r['orders']:>8}"
            )
        print(f"at {args.fill_target:.0%} fill: {report.at_target}")
    rs, mm = report.at_target.get("rs"), report.at_target.get("minmax")
    emit(
        {
            "benchmark": "simulate_m5",
            "series": report.series,
            "days": report.periods,
            "fill_target": args.fill_target,
            "rs_inventory_value": rs and round(rs["avg_on_hand_value"], 2),
            "minmax_inventory_value": mm and round(mm["avg_on_hand_value"], 2),
            "inventory_saving": report.inventory_saving,
            "rs_service_level_needed": rs and round(rs["setting"], 4),
            "minmax_cover_factor_needed": mm and round(mm["setting"], 3),
            "seconds": round(seconds, 1),
            "plot": report.plot,
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


if __name__ == "__main__":
    main()
