"""The planner's worklist, pure: urgency of PO lines and POs, and the exceptions to clear.

Everything here takes and returns polars frames; the PO store, the lake and the clock are
read by the caller (``jobs/review.py``).

Urgency of a line, from the stock position it was planned on:
- ``daily_rate``: the forecast over the protection period divided by its days;
- ``days_of_cover``: position / daily rate (null when nothing is expected to sell);
- ``stockout_before_delivery``: the position runs out before the PO's expected delivery,
  the next possible one (``stockout_date`` is the day it runs out);
- ``value_at_risk``: units expected short until that delivery (gamma law of demand over
  those days) × unit cost.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import polars as pl

from kernel.distribution import expected_shortage

__all__ = [
    "EXCEPTION_SCHEMA",
    "EXCEPTION_TYPES",
    "URGENCY_LEVELS",
    "held_lines",
    "line_exceptions",
    "line_urgency",
    "plan_exceptions",
    "po_urgency",
    "release_advice",
    "sort_by_urgency",
]

URGENCY_LEVELS = ("critical", "watch", "ok")

EXCEPTION_TYPES = (
    "stockout_risk",
    "overstock",
    "large_change",
    "dormant_item",
    "held_po",
    "stale_plan",
    "stale_pos_feed",
    "missing_stock_position",
    "missing_rule",
    "unknown_store",
    "unknown_sku",
    "suspect_history",
)

EXCEPTION_SCHEMA: dict[str, pl.DataType] = {
    "type": pl.String(),
    "subject": pl.String(),
    "day": pl.Date(),
    "message": pl.String(),
    "po_id": pl.Int64(),
    "store_id": pl.String(),
    "sku_id": pl.String(),
    "supplier_id": pl.String(),
    "value": pl.Float64(),
}


def line_urgency(lines: pl.DataFrame, *, overstock_days: float = 60.0) -> pl.DataFrame:
    """Add urgency columns to PO lines.

    Needs ``plan_date, expected_delivery, position, demand_mean, demand_sd,
    protection_days, quantity, unit_cost``. Adds ``daily_rate, days_to_delivery,
    days_of_cover, stockout_date, stockout_before_delivery, short_units, value_at_risk,
    cover_after_order, overstock`` (cover after the order above ``overstock_days``).
    """
    f64 = pl.Float64
    rate = pl.col("demand_mean").cast(f64) / pl.col("protection_days").cast(f64).clip(1e-9)
    out = lines.with_columns(
        rate.alias("daily_rate"),
        (pl.col("expected_delivery") - pl.col("plan_date"))
        .dt.total_days()
        .clip(lower_bound=0)
        .alias("days_to_delivery"),
    ).with_columns(
        pl.when(pl.col("daily_rate") > 1e-9)
        .then(pl.col("position").cast(f64).clip(lower_bound=0.0) / pl.col("daily_rate"))
        .otherwise(None)
        .alias("days_of_cover"),
        pl.when(pl.col("daily_rate") > 1e-9)
        .then((pl.col("position").cast(f64) + pl.col("quantity")) / pl.col("daily_rate"))
        .otherwise(None)
        .alias("cover_after_order"),
    )
    out = out.with_columns(
        (pl.col("days_of_cover") < pl.col("days_to_delivery"))
        .fill_null(False)
        .alias("stockout_before_delivery"),
        (pl.col("cover_after_order") > overstock_days).fill_null(False).alias("overstock"),
    ).with_columns(
        pl.when(pl.col("stockout_before_delivery"))
        .then(
            pl.col("plan_date") + pl.duration(days=pl.col("days_of_cover").floor().cast(pl.Int64))
        )
        .otherwise(None)
        .alias("stockout_date"),
    )
    t = out["days_to_delivery"].cast(f64).to_numpy()
    period = np.maximum(out["protection_days"].cast(f64).to_numpy(), 1e-9)
    mean_t = out["daily_rate"].to_numpy() * t
    sd_t = out["demand_sd"].cast(f64).fill_null(0.0).to_numpy() * np.sqrt(
        np.clip(t / period, 0.0, None)
    )
    short = expected_shortage(mean_t, sd_t, out["position"].cast(f64).to_numpy())
    return out.with_columns(
        pl.Series("short_units", np.round(short, 3)),
        pl.Series("value_at_risk", np.round(short * out["unit_cost"].to_numpy(), 2)),
    )


def po_urgency(lines: pl.DataFrame) -> pl.DataFrame:
    """Per PO (``po_id``): its lines' urgency summed up, and its level.

    ``critical``: a line runs out before the delivery; ``watch``: a line has less than
    twice the days to delivery of cover; ``ok`` otherwise.
    """
    watch = pl.col("days_of_cover") < 2 * pl.col("days_to_delivery")
    agg = lines.group_by("po_id").agg(
        pl.col("stockout_before_delivery").sum().cast(pl.Int64).alias("stockout_lines"),
        pl.col("stockout_date").min().alias("first_stockout"),
        pl.col("days_of_cover").min().alias("min_days_of_cover"),
        pl.col("value_at_risk").sum().round(2).alias("value_at_risk"),
        pl.col("overstock").sum().cast(pl.Int64).alias("overstock_lines"),
        watch.fill_null(False).any().alias("_watch"),
    )
    return agg.with_columns(
        pl.when(pl.col("stockout_lines") > 0)
        .then(pl.lit("critical"))
        .when(pl.col("_watch"))
        .then(pl.lit("watch"))
        .otherwise(pl.lit("ok"))
        .alias("urgency")
    ).drop("_watch")


def sort_by_urgency(pos: pl.DataFrame) -> pl.DataFrame:
    """Most urgent first: level, earliest stockout, least cover, most value at risk."""
    rank = pl.col("urgency").replace_strict(
        {u: i for i, u in enumerate(URGENCY_LEVELS)}, return_dtype=pl.Int64
    )
    return (
        pos.with_columns(rank.alias("_rank"))
        .sort(
            ["_rank", "first_stockout", "min_days_of_cover", "value_at_risk", "po_id"],
            descending=[False, False, False, True, False],
            nulls_last=True,
        )
        .drop("_rank")
    )


def line_exceptions(
    lines: pl.DataFrame,
    previous: pl.DataFrame,
    *,
    change_ratio: float = 0.5,
    change_min_units: float = 12.0,
    dormant: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Stockout risk, overstock, large change against the previous plan and orders for
    dormant items, per line.

    ``lines``: from :func:`line_urgency` (with ``po_id, store_id, sku_id, supplier_id``);
    ``previous``: ``store_id, sku_id, previous_quantity`` from the plan before (a
    store×SKU absent from it had 0). A change is large when it moves the quantity by more
    than ``change_ratio`` of the previous one and by at least ``change_min_units``.
    ``dormant``: ``store_id, sku_id`` classed inactive when the plan was made (no sale for
    weeks): a line ordering them is there on the chance they sell again (the revival
    forecast), which a planner may rather not take.
    """
    base = ["po_id", "store_id", "sku_id", "supplier_id"]
    subject = pl.format("{}/{}", "store_id", "sku_id").alias("subject")
    risk = lines.filter(pl.col("stockout_before_delivery")).select(
        pl.lit("stockout_risk").alias("type"),
        subject,
        pl.col("plan_date").alias("day"),
        pl.format(
            "{}/{} runs out on {} ({} days of cover) before the delivery on {}",
            "store_id",
            "sku_id",
            "stockout_date",
            pl.col("days_of_cover").round(1),
            "expected_delivery",
        ).alias("message"),
        *base,
        pl.col("value_at_risk").alias("value"),
    )
    over = lines.filter(pl.col("overstock")).select(
        pl.lit("overstock").alias("type"),
        subject,
        pl.col("plan_date").alias("day"),
        pl.format(
            "{}/{}: ordering {} gives {} days of cover",
            "store_id",
            "sku_id",
            "quantity",
            pl.col("cover_after_order").round(0).cast(pl.Int64),
        ).alias("message"),
        *base,
        pl.col("cover_after_order").alias("value"),
    )
    parts = [risk, over]
    if dormant is not None and dormant.height:
        asleep = lines.join(
            dormant.select("store_id", "sku_id").unique(), on=["store_id", "sku_id"]
        ).filter(pl.col("quantity") > 0)
        parts.append(
            asleep.select(
                pl.lit("dormant_item").alias("type"),
                subject,
                pl.col("plan_date").alias("day"),
                pl.format(
                    "{}/{}: no sale for weeks (classed inactive); ordering {} on the chance it "
                    "sells again (revival forecast): reject the line, or stop the item in its "
                    "rule, if it is delisted",
                    "store_id",
                    "sku_id",
                    "quantity",
                ).alias("message"),
                *base,
                pl.col("quantity").cast(pl.Float64).alias("value"),
            )
        )
    if previous.height:
        joined = lines.join(previous, on=["store_id", "sku_id"], how="left").with_columns(
            pl.col("previous_quantity").fill_null(0)
        )
        delta = (pl.col("quantity") - pl.col("previous_quantity")).abs()
        large = joined.filter(
            (delta >= change_min_units) & (delta > change_ratio * pl.col("previous_quantity"))
        ).select(
            pl.lit("large_change").alias("type"),
            subject,
            pl.col("plan_date").alias("day"),
            pl.format(
                "{}/{}: {} now, {} in the previous plan",
                "store_id",
                "sku_id",
                "quantity",
                "previous_quantity",
            ).alias("message"),
            *base,
            (pl.col("quantity") - pl.col("previous_quantity")).cast(pl.Float64).alias("value"),
        )
        parts.append(large)
    return _typed(pl.concat([_typed(p) for p in parts]))


def plan_exceptions(held: pl.DataFrame, stale: pl.DataFrame, today: date) -> pl.DataFrame:
    """Held POs (``plan_date, supplier_id, store_id, value, min_order_value``) and stale
    plans (``plan_date, purchase_orders, reason``) as exceptions."""
    held_x = held.select(
        pl.lit("held_po").alias("type"),
        pl.format("{}/{}/{}", "supplier_id", "store_id", "plan_date").alias("subject"),
        pl.col("plan_date").alias("day"),
        pl.format(
            "PO for {} at {} held: value {} under the supplier minimum {}",
            "supplier_id",
            "store_id",
            pl.col("value").round(2),
            pl.col("min_order_value").round(2),
        ).alias("message"),
        pl.lit(None, pl.Int64).alias("po_id"),
        "store_id",
        pl.lit(None, pl.String).alias("sku_id"),
        "supplier_id",
        (pl.col("min_order_value") - pl.col("value")).alias("value"),
    )
    stale_x = stale.select(
        pl.lit("stale_plan").alias("type"),
        pl.col("plan_date").cast(pl.String).alias("subject"),
        pl.lit(today).alias("day"),
        pl.format("plan of {}: {}", "plan_date", "reason").alias("message"),
        pl.lit(None, pl.Int64).alias("po_id"),
        pl.lit(None, pl.String).alias("store_id"),
        pl.lit(None, pl.String).alias("sku_id"),
        pl.lit(None, pl.String).alias("supplier_id"),
        pl.col("purchase_orders").cast(pl.Float64).alias("value"),
    )
    return _typed(pl.concat([_typed(held_x), _typed(stale_x)]))


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select([pl.col(c).cast(t) for c, t in EXCEPTION_SCHEMA.items()])


def held_lines(evaluated: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """The lines of POs held under their supplier's minimum, with the quantity each would
    have had (the plan set them to 0): ``evaluated`` and ``held`` from a Suggestion."""
    keys = ["supplier_id", "store_id", "order_date"]
    if held.is_empty():
        return evaluated.clear()
    before_hold = (
        pl.col("after_moq")
        + pl.col("capacity_adjustment")
        + pl.col("shelf_life_adjustment")
        + pl.col("moq_cancel_adjustment")
    )
    return (
        evaluated.join(held.select(keys), on=keys, how="semi")
        .with_columns(before_hold.round(0).cast(pl.Int64).alias("quantity"))
        .filter(pl.col("quantity") > 0)
        .with_columns(
            (pl.col("quantity") * pl.col("unit_cost")).alias("value"),
            pl.lit(0).alias("min_order_fill"),
            pl.lit(0).alias("budget_adjustment"),
        )
    )


def release_advice(held_po: dict) -> dict:
    """What it takes to release a held PO: the value missing, and the whole packs that
    would fill it, added one at a time to the line with the least cover (as ``fill`` does).

    ``held_po``: ``value, min_order_value, currency, supplier_id`` and ``lines`` (each
    ``sku_id, quantity, unit_cost, explanation`` with ``position, target_level,
    pack_size``).
    """
    short = max(float(held_po["min_order_value"]) - float(held_po["value"]), 0.0)
    lines = [
        {
            "sku_id": x["sku_id"],
            "quantity": int(x["quantity"]),
            "unit_cost": float(x["unit_cost"]),
            "pack": int(x["explanation"].get("pack_size") or 1),
            "position": float(x["explanation"].get("position") or 0.0),
            "target": max(float(x["explanation"].get("target_level") or 0.0), 1e-9),
        }
        for x in held_po["lines"]
    ]
    added = {x["sku_id"]: 0 for x in lines}
    total = float(held_po["value"])
    buyable = [x for x in lines if x["unit_cost"] > 0]
    minimum = float(held_po["min_order_value"])

    def cover(x: dict) -> float:
        return (x["position"] + x["quantity"] + added[x["sku_id"]]) / x["target"]

    for _ in range(500):  # one pack at a time, as the plan's fill does …
        if total >= minimum - 1e-9 or not buyable:
            break
        pick = min(buyable, key=cover)
        added[pick["sku_id"]] += pick["pack"]
        total += pick["pack"] * pick["unit_cost"]
    if total < minimum - 1e-9 and buyable:  # … and a far-off minimum in one step
        pick = min(buyable, key=cover)
        packs = math.ceil((minimum - total) / (pick["pack"] * pick["unit_cost"]) - 1e-9)
        added[pick["sku_id"]] += packs * pick["pack"]
        total += packs * pick["pack"] * pick["unit_cost"]
    fill = [{"sku_id": k, "add_units": v} for k, v in added.items() if v]
    cur = held_po.get("currency", "")
    words = ", ".join(f"{f['add_units']} units of {f['sku_id']}" for f in fill)
    return {
        "short_value": round(short, 2),
        "fill": fill,
        "value_after_fill": round(total, 2),
        "text": (
            f"{short:,.2f} {cur} under the supplier minimum of "
            f"{float(held_po['min_order_value']):,.2f} {cur}. Released when the order reaches "
            f"it: add {words or 'nothing'} (→ {total:,.2f} {cur}); or set the supplier's "
            f"min_order_action to fill, or lower its min_order_value — the next plan "
            "re-evaluates."
        ),
    }
