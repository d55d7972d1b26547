"""A planned synthetic chain for the planner tests and benchmark, without training a model.

The real stages run — POS lines through the lake, rules, protection spans, lead-time
demand, the policy, the PO store, held POs, the forecast file — except that the forecast
is a naive one (the mean of the last 28 days, its spread from their variance) instead of
the MLflow champion, so a plan is there in seconds.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from features.sales import last_date
from forecasting.quantiles import add_daily_quantiles
from jobs.erp import ingest_feed
from jobs.refresh import ingest_inventory, ingest_pos
from jobs.replenish import write_demand_classes
from jobs.runtime import Runtime
from replen.settings import Settings
from replen.synthetic import generate
from replenishment.leadtime import lead_time_demand
from replenishment.planner import Suggestion, protection_spans, suggest
from replenishment.rules import Rules
from replenishment.worklist import held_lines

DAY = date(2024, 1, 1)


def big_plan(stores: int = 250, skus: int = 40, seed: int = 1) -> Suggestion:
    """``stores × skus`` lines over four suppliers, every one ordering."""
    rng = np.random.default_rng(seed)
    suppliers = pl.DataFrame(
        {
            "supplier_id": [f"SUP{i}" for i in range(4)],
            "lead_time_mean": [2.0, 3.0, 5.0, 7.0],
            "order_days": ["Mon", "Mon,Thu", "Tue", "Fri"],
        }
    )
    sku_ids = [f"K{i:04d}" for i in range(skus)]
    items = pl.DataFrame(
        {
            "sku_id": sku_ids,
            "supplier_id": [f"SUP{i % 4}" for i in range(skus)],
            "unit_cost": rng.uniform(0.5, 20, skus).round(2),
            "pack_size": rng.choice([1, 6, 12], skus),
        }
    )
    rules = Rules.from_frames(suppliers, items)
    keys = pl.DataFrame(
        {
            "store_id": [f"S{s:03d}" for s in range(stores) for _ in range(skus)],
            "sku_id": sku_ids * stores,
        }
    )
    spans = protection_spans(keys, rules, DAY, 0.95)
    mean = rng.gamma(2.0, 10.0, keys.height) + 1
    demand = spans.select("store_id", "sku_id", "protection_days").with_columns(
        demand_mean=pl.Series(mean),
        demand_quantile=pl.Series(mean * 1.4),
        demand_sd=pl.Series(mean * 0.3),
        daily_mean=pl.Series(mean) / pl.col("protection_days"),
        model_version=pl.lit("7"),
    )
    stock = keys.with_columns(
        on_hand=pl.Series(rng.uniform(0, 1, keys.height) * mean * 0.5),
        on_order=pl.lit(0.0),
    )
    return suggest(demand, stock, rules, spans)


def naive_forecast(history: pl.DataFrame, horizon: int, quantiles: list[float]) -> pl.DataFrame:
    """Each series' last-28-day mean and sd as a flat daily forecast (forecast contract)."""
    end = last_date(history)
    recent = history.filter(pl.col("date") > pl.lit(end) - pl.duration(days=28))
    stats = recent.group_by("store_id", "sku_id").agg(
        pl.col("units").mean().alias("mean"), pl.col("units").std().fill_null(0.0).alias("sd")
    )
    days = pl.DataFrame({"date": [end + timedelta(days=i + 1) for i in range(horizon)]})
    frame = stats.join(days, how="cross").with_columns(
        pl.lit(0.0).alias("level_var"),
        pl.lit("window_average").alias("model"),
        pl.lit("t1").alias("model_version"),
    )
    return add_daily_quantiles(frame, quantiles).sort("store_id", "sku_id", "date")


def build_planner_chain(
    settings: Settings,
    *,
    stores: int = 2,
    skus: int = 8,
    days: int = 120,
    seed: int = 3,
    suppliers: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Generate, ingest and plan a chain into ``settings``' data directory; returns what was
    made (``plan_date``, ``purchase_orders``, ``lines``, ``held``, the ``chain``)."""
    chain = generate(stores=stores, skus=skus, days=days, seed=seed)
    rt = Runtime(settings)
    # The retailer's systems send names and stock positions, as the demo does.
    for kind, frame in (
        ("items", chain.item_master()),
        ("stores", chain.store_master()),
        ("stock", chain.stock),
    ):
        ingest_feed(rt, kind, frame, source=f"planner test chain {kind}")
    rules = Rules.from_frames(suppliers if suppliers is not None else chain.suppliers, chain.items)
    rt.rules_store.save(rules, "planner test chain")
    ingest_pos(rt, chain.pos, push=False, chunk_rows=max(chain.pos.height, 1))
    ingest_inventory(rt, chain.inventory)
    history = rt.history()
    plan_date = last_date(history) + timedelta(days=1)
    keys = history.select("store_id", "sku_id").unique()
    spans = protection_spans(keys, rules, plan_date, settings.service_level)
    horizon = int(spans["protection_days"].max()) + 2
    forecast = naive_forecast(history, horizon, settings.quantiles)
    demand = lead_time_demand(forecast, spans)
    sug = suggest(demand, chain.stock, rules, spans)
    report = rt.orders.replace_suggestions(plan_date, sug)
    held = rt.review.replace_held(plan_date, held_lines(sug.evaluated, sug.held))
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    forecast.write_parquet(settings.out_dir / f"forecast_{plan_date}.parquet")
    write_demand_classes(history, settings.out_dir, plan_date)
    return {
        "plan_date": plan_date,
        "purchase_orders": report.created,
        "lines": sug.lines.height,
        "held": held,
        "chain": chain,
        "suggestion": sug,
    }
