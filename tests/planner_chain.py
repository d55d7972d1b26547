"""A planned synthetic chain for the planner tests and benchmark, without training a model.

The real stages run — POS lines through the lake, rules, protection spans, lead-time
demand, the policy, the PO store, held POs, the forecast file — except that the forecast
is a naive one (the mean of the last 28 days, its spread from their variance) instead of
the MLflow champion, so a plan is there in seconds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl

from features.sales import last_date
from forecasting.quantiles import add_daily_quantiles, lead_time_demand
from jobs.refresh import ingest_inventory, ingest_pos
from jobs.runtime import Runtime
from replen.settings import Settings
from replen.synthetic import generate
from replenishment.planner import protection_spans, suggest
from replenishment.review import held_lines
from replenishment.rules import Rules


def naive_forecast(history: pl.DataFrame, horizon: int, quantiles: list[float]) -> pl.DataFrame:
    """Each series' last-28-day mean and sd as a flat daily forecast (forecast contract)."""
    end = last_date(history)
    recent = history.filter(pl.col("date") > pl.lit(end) - pl.duration(days=28))
    stats = recent.group_by("store_id", "sku_id").agg(
        pl.col("units").mean().alias("mean"), pl.col("units").std().fill_null(0.0).alias("sd")
    )
    days = pl.DataFrame({"date": [end + timedelta(days=i + 1) for i in range(horizon)]})
    frame = stats.join(days, how="cross").with_columns(
        pl.lit(1.0).alias("cum_sd_factor"),
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
    rt.save_master(stock=chain.stock, items=chain.items)
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
    return {
        "plan_date": plan_date,
        "purchase_orders": report.created,
        "lines": sug.lines.height,
        "held": held,
        "chain": chain,
        "suggestion": sug,
    }
