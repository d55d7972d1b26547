"""PO suggestion speed: 1,000,000 store×SKU rows through the vectorised policy and the full
planner (joins with rules, spans, constraints, PO grouping), against a plain per-row Python
loop of the same arithmetic, in one run. Aims: < 30 s and < 4 GB for the 1M rows.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import polars as pl
from _common import emit, peak_rss_mb


def frames(rows: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, object]:
    from replenishment.rules import Rules

    rng = np.random.default_rng(seed)
    skus = 10_000
    stores = max(1, rows // skus)
    sku_ids = [f"SKU{i:05d}" for i in range(skus)]
    suppliers = pl.DataFrame(
        {
            "supplier_id": [f"SUP{i:02d}" for i in range(20)],
            "lead_time_mean": rng.integers(2, 12, 20).astype(float),
            "lead_time_std": rng.uniform(0, 2, 20),
            "order_days": ["Mon,Thu"] * 20,
            "min_order_value": [0.0] * 20,
        }
    )
    items = pl.DataFrame(
        {
            "sku_id": sku_ids,
            "supplier_id": [f"SUP{i % 20:02d}" for i in range(skus)],
            "unit_cost": rng.uniform(0.5, 20, skus),
            "pack_size": rng.choice([1, 4, 6, 12, 24], skus),
            "moq_units": rng.choice([0, 6, 12], skus),
        }
    )
    rules = Rules.from_frames(suppliers, items)
    keys = pl.DataFrame(
        {
            "store_id": np.repeat([f"S{i:03d}" for i in range(stores)], skus),
            "sku_id": np.tile(sku_ids, stores),
        }
    )
    n = keys.height
    mean = rng.gamma(1.5, 10, n)
    demand = keys.with_columns(
        pl.Series("demand_mean", mean),
        pl.Series("demand_quantile", mean * 1.4 + 1),
        pl.Series("demand_sd", mean * 0.3),
        pl.Series("daily_mean", mean / 10),
        pl.lit("1").alias("model_version"),
    )
    stock = keys.with_columns(
        pl.Series("on_hand", rng.integers(0, 50, n).astype(float)),
        pl.Series("on_order", rng.integers(0, 20, n).astype(float)),
    )
    return demand, stock, rules


def python_loop(rows: list[dict]) -> list[int]:
    out = []
    for r in rows:
        position = r["on_hand"] + r["on_order"]
        need = max(0.0, r["demand_quantile"] - position)
        pack = r["pack_size"]
        qty = math.ceil(need / pack - 1e-9) * pack if need > 0 else 0
        moq = math.ceil(r["moq_units"] / pack) * pack
        if 0 < qty < moq:
            qty = moq
        out.append(int(qty))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from replenishment.planner import protection_spans, suggest
    from replenishment.policy import order_quantities

    demand, stock, rules = frames(args.rows)
    plan_day = date(2026, 11, 30)
    t0 = time.perf_counter()
    spans = protection_spans(demand.select("store_id", "sku_id"), rules, plan_day, 0.95)
    sug = suggest(demand, stock, rules, spans)
    planner_s = time.perf_counter() - t0

    policy_rows = demand.join(stock, on=["store_id", "sku_id"]).join(
        rules.items.select("sku_id", "pack_size", "moq_units"), on="sku_id"
    )
    t1 = time.perf_counter()
    vec = order_quantities(policy_rows)
    policy_s = time.perf_counter() - t1
    dicts = policy_rows.to_dicts()
    t2 = time.perf_counter()
    loop = python_loop(dicts)
    loop_s = time.perf_counter() - t2
    assert loop == vec["quantity"].to_list(), "vectorised and loop arithmetic disagree"
    n = policy_rows.height
    figures = {
        "benchmark": "suggest_speed",
        "rows": n,
        "planner_seconds": round(planner_s, 2),
        "planner_rows_per_s": round(n / planner_s),
        "policy_seconds": round(policy_s, 3),
        "policy_rows_per_s": round(n / policy_s),
        "python_loop_seconds": round(loop_s, 2),
        "python_loop_rows_per_s": round(n / loop_s),
        "speedup_vs_loop": round(loop_s / policy_s, 1),
        "purchase_orders": sug.headers.height,
        "lines": sug.lines.height,
        "peak_rss_mb": round(peak_rss_mb()),
    }
    if not args.json:
        print(
            f"{n:,} rows: planner {planner_s:.2f}s, policy {policy_s:.3f}s, python loop "
            f"{loop_s:.2f}s ({figures['speedup_vs_loop']}x); peak {figures['peak_rss_mb']} MB"
        )
    emit(figures)


if __name__ == "__main__":
    main()
