"""Today's PO suggestions: protection periods from rules, then policy, grouped into POs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from replenishment.policy import EXPLANATION_COLUMNS, order_up_to
from replenishment.rules import Rules, next_order_date

__all__ = ["Suggestion", "protection_spans", "suggest"]


@dataclass(frozen=True)
class Suggestion:
    """Suggested POs: one header per supplier×store×order date, lines with explanations.

    ``evaluated`` holds every store×SKU considered, ordering or not.
    """

    headers: pl.DataFrame
    lines: pl.DataFrame
    evaluated: pl.DataFrame


def protection_spans(
    keys: pl.DataFrame, rules: Rules, plan_date: date, service_level: float
) -> pl.DataFrame:
    """Per store×SKU: supplier, order date, and the protection period to cover.

    An order placed on the supplier's next order day must cover demand until the order after
    it arrives: days to the order day + lead time + review period.
    """
    sup = rules.suppliers.with_columns(
        pl.col("order_days")
        .map_elements(lambda d: next_order_date(d, plan_date), return_dtype=pl.Date)
        .alias("order_date")
    )
    joined = (
        keys.select("store_id", "sku_id")
        .join(rules.items.select("sku_id", "supplier_id"), on="sku_id", how="inner")
        .join(sup, on="supplier_id")
    )
    return joined.select(
        "store_id",
        "sku_id",
        "supplier_id",
        "order_date",
        (
            (pl.col("order_date") - pl.lit(plan_date)).dt.total_days().cast(pl.Float64)
            + pl.col("lead_time_mean")
            + pl.col("review_period_days")
        ).alias("protection_days"),
        "lead_time_mean",
        "lead_time_std",
        "review_period_days",
        pl.lit(service_level).alias("service_level"),
    )


def suggest(
    demand: pl.DataFrame, stock: pl.DataFrame, rules: Rules, spans: pl.DataFrame
) -> Suggestion:
    """Size every store×SKU order and group positive lines into POs.

    ``demand``: ``store_id, sku_id, demand_mean, demand_quantile, model_version`` over each
    row's protection period; ``stock``: ``store_id, sku_id, on_hand, on_order``; ``spans``:
    from :func:`protection_spans`.
    """
    rows = (
        spans.join(
            demand.select(
                "store_id", "sku_id", "demand_mean", "demand_quantile", "demand_sd", "model_version"
            ),
            on=["store_id", "sku_id"],
        )
        .join(
            stock.select("store_id", "sku_id", "on_hand", "on_order"),
            on=["store_id", "sku_id"],
            how="left",
        )
        .join(rules.items.select("sku_id", "unit_cost", "pack_size", "moq_units"), on="sku_id")
        .join(rules.suppliers.select("supplier_id", "currency"), on="supplier_id")
        .with_columns(pl.col("on_hand", "on_order").cast(pl.Float64).fill_null(0.0))
    )
    evaluated = order_up_to(rows).with_columns(
        (
            pl.col("order_date") + pl.duration(days=pl.col("lead_time_mean").ceil().cast(pl.Int64))
        ).alias("expected_delivery"),
        (pl.col("quantity") * pl.col("unit_cost")).alias("value"),
    )
    lines = (
        evaluated.filter(pl.col("quantity") > 0)
        .select(
            "supplier_id",
            "store_id",
            "sku_id",
            "order_date",
            "expected_delivery",
            "unit_cost",
            "value",
            "currency",
            "model_version",
            "protection_days",
            "service_level",
            "demand_sd",
            *EXPLANATION_COLUMNS,
        )
        .sort("supplier_id", "store_id", "sku_id")
    )
    headers = (
        lines.group_by("supplier_id", "store_id", "order_date")
        .agg(
            pl.col("expected_delivery").max(),
            pl.len().alias("lines"),
            pl.col("quantity").sum().alias("units"),
            pl.col("value").sum().round(2).alias("value"),
            pl.col("currency").first(),
            pl.col("model_version").first(),
        )
        .sort("supplier_id", "store_id")
    )
    return Suggestion(headers=headers, lines=lines, evaluated=evaluated)
