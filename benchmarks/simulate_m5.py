"""Forecast-driven (R,S) vs min/max on the M5 history, under the same generated constraints.

Replays the 182 days up to 2016-04-24 (never the suspect days after it) of the 280 M5
series through the shipped planner with realistic constraints generated from the history
before the replay (seeded): one supplier per department with order days, lead times with
spread, a minimum order value (hold or fill) and one budget; case packs sized to the
item's sales, MOQs, shelf lives on fresh food, shelf capacities on some store×SKUs. Lost
sales; each review forecasts from the sales known that day. (R,S) sweeps its service
level; min/max sweeps its cover factor and gap, set once from the 90 days before (as ERP
reordering rules are) and, as a stronger baseline, revised every 28 days. Compares the
average stock value each needs at the same fill rate (its efficient frontier,
interpolated). Aim: (R,S) holds >= 30% less than min/max at 95% fill.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import polars as pl
from _common import ROOT, SHARED, emit, load_m5, need_shared, peak_rss_mb

LAST_TRUSTED = date(2016, 4, 24)  # the M5 subset's later days are suspect
SERVICE_LEVELS = (0.55, 0.65, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995)
COVERS = (0.8, 1.0, 1.1, 1.2, 1.3, 1.4, 1.55, 1.7, 2.0, 2.5, 3.0, 4.0)
GAPS = (0.25, 0.5, 1.0)
FILL_TARGETS = (0.93, 0.95, 0.97)  # the saving at the target, and around it
PACKS = np.array([1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 30, 36, 48])


def generate_rules(history: pl.DataFrame, start: date, seed: int = 11) -> Any:
    """Realistic constraints from the sales and prices before ``start`` (seeded)."""
    from replenishment.rules import Rules

    rng = np.random.default_rng(seed)
    past = history.filter(pl.col("date").is_between(start - timedelta(days=90), start, "left"))
    per_series = (
        past.group_by("store_id", "sku_id")
        .agg((pl.col("units").sum() / 90).alias("rate"), pl.col("price").drop_nulls().median())
        .sort("store_id", "sku_id")  # group_by order varies: sort before sampling
    )
    per_item = (
        per_series.group_by("sku_id")
        .agg(
            pl.col("rate").mean(),
            pl.col("rate").min().alias("slowest"),
            pl.col("price").median(),
        )
        .sort("sku_id")
        .with_columns(pl.col("sku_id").str.replace(r"_\d+$", "").alias("supplier_id"))
    )
    fresh = {"FOODS_1", "FOODS_2"}
    suppliers = []
    for dept in sorted(set(per_item["supplier_id"])):
        food = dept.startswith("FOODS")
        lead = float(rng.integers(1, 4) if food else rng.integers(3, 8))
        days = ("Mon,Thu", "Tue,Fri", "Mon,Wed,Fri") if food else ("Mon", "Wed", "Tue,Thu")
        review = 3.5 if food else 7.0
        items = per_item.filter(pl.col("supplier_id") == dept)
        po_value = float((items["rate"] * items["price"] * 0.6).sum() * review)
        suppliers.append(
            {
                "supplier_id": dept,
                "lead_time_mean": lead,
                "lead_time_std": round(lead * float(rng.uniform(0.2, 0.5)), 1),
                "order_days": str(rng.choice(days)),
                "min_order_value": round(po_value * float(rng.uniform(0.3, 0.8)), 0),
                "min_order_action": str(rng.choice(["hold", "fill"])),
                "max_order_value": round(po_value * 4, 0) if dept == "FOODS_3" else None,
            }
        )
    rate = per_item["rate"].to_numpy()
    days_per_pack = rng.uniform(2, 6, rate.size)
    pack = PACKS[np.abs(PACKS[None, :] - (rate * days_per_pack)[:, None]).argmin(axis=1)]
    pack = np.where(rate < 0.3, 1, pack)
    moq = np.where(rng.random(rate.size) < 0.25, 2 * pack, 0)
    life_pick = rng.choice([21, 28, 35, 60], rate.size)
    slowest = np.maximum(per_item["slowest"].to_numpy(), 0.05)
    life = np.minimum(np.maximum(life_pick, np.ceil(3 * pack / slowest)), 120)
    is_fresh = per_item["supplier_id"].is_in(list(fresh)).to_numpy()
    items = per_item.select(
        "sku_id",
        "supplier_id",
        (pl.col("price").fill_null(1.0) * 0.6).round(2).alias("unit_cost"),
        pl.Series("pack_size", pack.astype(np.int64)),
        pl.Series("moq_units", moq.astype(np.int64)),
        pl.Series("shelf_life_days", np.where(is_fresh, life, np.nan)).fill_nan(None),
    )
    capped = (
        per_series.join(items.select("sku_id", "pack_size"), on="sku_id")
        .sort("store_id", "sku_id")
        .sample(fraction=0.3, seed=seed)
    )
    overrides = capped.select(
        "store_id",
        "sku_id",
        pl.max_horizontal(
            3 * pl.col("pack_size"),
            (pl.col("rate") * pl.Series(rng.uniform(21, 42, capped.height))).ceil(),
        )
        .cast(pl.Float64)
        .alias("max_capacity"),
    )
    return Rules.from_frames(pl.DataFrame(suppliers), items, overrides)


def min_max_levels(
    history: pl.DataFrame, rules: Any, start: date, days: int, revise_every: int | None
) -> pl.DataFrame:
    """Each store×SKU's average daily sales over the 90 days before ``start`` (or before
    each revision), with its lead time and review period."""
    revisions = (
        [start]
        if not revise_every
        else [start + timedelta(days=k) for k in range(0, days, revise_every)]
    )
    spans = rules.items.join(rules.suppliers, on="supplier_id").select(
        "sku_id", "lead_time_mean", "review_period_days"
    )
    frames = []
    for when in revisions:
        window = history.filter(pl.col("date").is_between(when - timedelta(days=90), when, "left"))
        frames.append(
            window.group_by("store_id", "sku_id")
            .agg((pl.col("units").sum() / 90).alias("daily_mean"))
            .with_columns(pl.lit(when).alias("from_date"))
        )
    return pl.concat(frames).join(spans, on="sku_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=SHARED / "m5_subset" / "sales.csv.gz")
    parser.add_argument("--days", type=int, default=182)
    parser.add_argument("--fill-target", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=11, help="constraints and lead-time draws")
    parser.add_argument("--forecast-every", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer settings (a smoke run)")
    parser.add_argument(
        "--plot", type=Path, default=ROOT / "benchmarks" / "results" / "tradeoff_m5.png"
    )
    parser.add_argument(
        "--write-rules", type=Path, help="also write the generated rules as CSV to this folder"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    need_shared(args.data)

    from jobs.simulation import Forecaster, initial_stock, replayed_demand
    from replenishment.simulate import replay
    from replenishment.tradeoff import at_fill_rate, min_max, plot_tradeoff

    wall, cpu = time.perf_counter(), time.process_time()
    history = load_m5(args.data).filter(pl.col("date") <= LAST_TRUSTED)
    start = LAST_TRUSTED - timedelta(days=args.days - 1)
    rules = generate_rules(history, start, args.seed)
    sales = history.drop("price")
    longest = (
        int(
            rules.suppliers.select(
                (pl.col("lead_time_mean") + pl.col("review_period_days")).max()
            ).item()
        )
        + 2
    )
    forecaster = Forecaster(sales, start, args.days, horizon=longest, every=args.forecast_every)
    forecaster.prepare()
    forecast_cpu = time.process_time() - cpu
    demand = replayed_demand(sales, start, args.days)
    stock, _ = initial_stock(sales, rules, start)
    levels = (0.8, 0.9, 0.95, 0.98) if args.quick else SERVICE_LEVELS
    covers = (1.0, 1.5, 2.0, 3.0) if args.quick else COVERS
    gaps = (0.5,) if args.quick else GAPS
    runs: list[dict[str, Any]] = []
    replay_cpu: list[float] = []

    def run(policy: str, setting: dict[str, float], fn: Any, level: float = 0.95) -> None:
        began = time.process_time()
        result = replay(
            demand,
            rules,
            fn,
            start=start,
            days=args.days,
            on_hand=stock,
            service_level=level,
            seed=args.seed,
        )
        replay_cpu.append(time.process_time() - began)
        t = result.totals()
        runs.append({"policy": policy, **setting, **{k: t[k] for k in _SHOWN}})
        if not args.json:
            print(_row(runs[-1]), flush=True)

    if not args.json:
        print(f"{'policy':<16}{'setting':<18}" + "".join(f"{k[:11]:>12}" for k in _SHOWN))
    for level in levels:
        run("rs", {"service_level": level}, forecaster, level)
    for policy, every in (("minmax", None), ("minmax_revised", 28)):
        base = min_max_levels(sales, rules, start, args.days, every)
        for cover in covers:
            for gap in gaps:
                lv = base.with_columns(
                    (
                        pl.col("daily_mean")
                        * (pl.col("lead_time_mean") + pl.col("review_period_days"))
                        * cover
                    ).alias("min_units")
                ).with_columns(
                    (
                        pl.col("min_units")
                        + pl.col("daily_mean") * pl.col("review_period_days") * gap
                    ).alias("max_units")
                )
                run(policy, {"cover": cover, "gap": gap}, min_max(lv))

    policies = ("rs", "minmax", "minmax_revised")
    targets = sorted({*FILL_TARGETS, args.fill_target})
    best = {
        t: {p: at_fill_rate([r for r in runs if r["policy"] == p], t) for p in policies}
        for t in targets
    }
    saving = {t: {p: _saving(b["rs"], b[p]) for p in policies[1:]} for t, b in best.items()}
    main_best, main_saving = best[args.fill_target], saving[args.fill_target]
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        names = {"rs": "forecast (R,S)", "minmax": "min/max", "minmax_revised": "min/max 28d"}
        curves = {
            names[p]: [(r["avg_on_hand_value"], r["fill_rate"]) for r in runs if r["policy"] == p]
            for p in policies
        }
        plot_tradeoff(curves, args.plot, args.fill_target)
    if args.write_rules:
        args.write_rules.mkdir(parents=True, exist_ok=True)
        for table in ("suppliers", "items", "overrides"):
            getattr(rules, table).write_csv(args.write_rules / f"{table}.csv")
    if not args.json:
        for t in targets:
            b = best[t]
            print(f"at {t:.0%} fill: " + "; ".join(f"{p} {_at(b[p])}" for p in policies))
            print(f"  (R,S) holds less: {saving[t]}")
    value = lambda b: b and round(b["avg_on_hand_value"], 1)  # noqa: E731
    emit(
        {
            "benchmark": "simulate_m5",
            "series": demand.select("store_id", "sku_id").n_unique(),
            "days": args.days,
            "start": str(start),
            "end": str(LAST_TRUSTED),
            "fill_target": args.fill_target,
            "rs_stock_value": value(main_best["rs"]),
            "minmax_stock_value": value(main_best["minmax"]),
            "minmax_revised_stock_value": value(main_best["minmax_revised"]),
            "saving_vs_minmax": main_saving["minmax"],
            "saving_vs_minmax_revised": main_saving["minmax_revised"],
            "saving_by_fill": {str(t): v for t, v in saving.items()},
            "rs_max_fill": max(r["fill_rate"] for r in runs if r["policy"] == "rs"),
            "minmax_max_fill": max(r["fill_rate"] for r in runs if r["policy"] == "minmax"),
            "replays": len(runs),
            "replay_cpu_seconds_median": round(float(np.median(replay_cpu)), 2),
            "forecast_cpu_seconds": round(forecast_cpu, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1),
            "wall_seconds": round(time.perf_counter() - wall, 1),
            "plot": str(args.plot) if args.plot else None,
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


def _saving(rs: dict[str, Any] | None, other: dict[str, Any] | None) -> float | None:
    if not rs or not other:
        return None
    return round(1 - rs["avg_on_hand_value"] / other["avg_on_hand_value"], 4)


_SHOWN = ("fill_rate", "avg_on_hand_value", "orders", "held", "stockout_days", "waste_units")


def _row(r: dict[str, Any]) -> str:
    return f"{r['policy']:<16}{_setting(r):<18}" + "".join(
        f"{r[k]:>12.4f}" if k == "fill_rate" else f"{r[k]:>12,.0f}" for k in _SHOWN
    )


def _at(b: dict[str, Any] | None) -> str:
    if not b:
        return "not reached"
    lo, hi = (_setting(p) for p in b["interpolated_between"])
    return f"{b['avg_on_hand_value']:,.0f} ({lo} … {hi})"


def _setting(r: dict[str, Any]) -> str:
    if r["policy"] == "rs":
        return f"SL {r['service_level']}"
    return f"cover {r['cover']} gap {r['gap']}"


if __name__ == "__main__":
    main()
