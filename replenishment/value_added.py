"""Forecast value added: did the planner's change of a suggested quantity beat the model?

A line sized on a forecast of ``demand_mean`` units over its protection period; a planner
who changes the quantity by Δ units says, in effect, that Δ more (or fewer) units will sell
over that period. After the period, both are scored against what sold:

    error of the suggestion = |demand_mean − sold|
    error of the planner    = |demand_mean + Δ − sold|

and summed per planner, store and model version as WAPE (Σ error / Σ sold). The value
added is ``wape_suggestion − wape_planner``: positive when the planner's changes helped.
"""

from __future__ import annotations

from datetime import date

import polars as pl

__all__ = ["scored_changes", "value_added"]

_GROUP = ["planner", "store_id", "model_version"]


def scored_changes(changes: pl.DataFrame, sales: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """One row per changed line whose protection period ended by ``as_of``.

    ``changes``: ``po_id, plan_date, store_id, sku_id, model_version, planner,
    demand_mean, protection_days, suggested_quantity, quantity``; ``sales``: daily
    ``store_id, sku_id, date, units``. The period is ``plan_date`` + whole days (the
    forecast is scaled to them); lines whose period is still running are left out.
    """
    days = pl.col("protection_days").round(0).cast(pl.Int64).clip(lower_bound=1)
    periods = changes.with_columns(
        days.alias("days"),
        (pl.col("plan_date") + pl.duration(days=days) - pl.duration(days=1)).alias("end"),
    ).filter(pl.col("end") <= pl.lit(as_of))
    if periods.is_empty():
        return periods.with_columns(
            pl.lit(0.0).alias("sold"),
            pl.lit(0.0).alias("forecast_suggestion"),
            pl.lit(0.0).alias("forecast_planner"),
        ).clear()
    lo = periods["plan_date"].min()
    window = sales.filter((pl.col("date") >= lo) & (pl.col("date") <= as_of)).select(
        "store_id", "sku_id", "date", "units"
    )
    sold = (
        periods.select("po_id", "sku_id", "store_id", "plan_date", "end")
        .join(window, on=["store_id", "sku_id"], how="left")
        .filter(pl.col("date").is_between(pl.col("plan_date"), pl.col("end")))
        .group_by("po_id", "sku_id")
        .agg(pl.col("units").sum().alias("sold"))
    )
    scale = pl.col("days") / pl.col("protection_days").clip(lower_bound=1e-9)
    return (
        periods.join(sold, on=["po_id", "sku_id"], how="left")
        .with_columns(pl.col("sold").fill_null(0.0))
        .with_columns((pl.col("demand_mean") * scale).alias("forecast_suggestion"))
        .with_columns(
            (
                pl.col("forecast_suggestion") + pl.col("quantity") - pl.col("suggested_quantity")
            ).alias("forecast_planner")
        )
        .drop("days")
    )


def value_added(scored: pl.DataFrame) -> pl.DataFrame:
    """Per planner × store × model version: lines, units sold, WAPE of the suggestion and
    of the planner's quantity, and the value added (WAPE points; > 0: the change helped)."""
    err_s = (pl.col("forecast_suggestion") - pl.col("sold")).abs()
    err_p = (pl.col("forecast_planner") - pl.col("sold")).abs()
    sold = pl.col("sold").sum()
    return (
        scored.group_by(_GROUP)
        .agg(
            pl.len().alias("lines"),
            sold.alias("sold"),
            (pl.col("quantity") - pl.col("suggested_quantity")).sum().alias("units_changed"),
            (err_s.sum() / pl.max_horizontal(sold, pl.lit(1e-9))).alias("wape_suggestion"),
            (err_p.sum() / pl.max_horizontal(sold, pl.lit(1e-9))).alias("wape_planner"),
            (err_p < err_s).sum().alias("lines_improved"),
        )
        .with_columns(
            (pl.col("wape_suggestion") - pl.col("wape_planner")).alias("value_added"),
            pl.col("wape_suggestion", "wape_planner").round(4),
        )
        .with_columns(pl.col("value_added").round(4))
        .sort(_GROUP)
    )
