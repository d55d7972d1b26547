"""What a plan starts from: the latest stock position of each store×SKU plus Replen's own POs
that this position cannot know yet; and which store×SKUs cannot be planned, and why."""

from __future__ import annotations

import polars as pl

from replenishment.rules import Rules

__all__ = ["REASONS", "own_on_order", "stock_position", "triage"]

REASONS = {
    "no_rule": "no item rule (supplier, cost, pack) for this SKU; add it to the rules",
    "no_position": "no stock position as of the plan date; send one (replen ingest stock)",
    "no_forecast": "no sales history to forecast from",
}


def own_on_order(
    lines: pl.DataFrame, receipts: pl.DataFrame, positions: pl.DataFrame
) -> pl.DataFrame:
    """Units of POs ordered through Replen that each store×SKU's position does not count.

    ``lines``: ``po_id, store_id, sku_id, quantity, erp_known_at`` (quantity as confirmed
    by the supplier if it was); ``receipts``: ``po_id, sku_id, quantity, received_at``;
    ``positions``: ``store_id, sku_id, as_of``. A position counts a PO once the ERP held it
    when the position was taken (then it is in the ERP's ``on_order``, or in ``on_hand``
    once received). Before that the PO counts here in full, less what was received before
    the position was taken (already in its ``on_hand``). So a PO is never missing from
    the position, and never in it twice.
    """
    keyed = lines.join(positions.select("store_id", "sku_id", "as_of"), on=["store_id", "sku_id"])
    got = (
        keyed.select("po_id", "sku_id", "as_of")
        .join(receipts, on=["po_id", "sku_id"])
        .filter(pl.col("received_at") <= pl.col("as_of"))
        .group_by("po_id", "sku_id")
        .agg(pl.col("quantity").sum().alias("_received"))
    )
    known = pl.col("erp_known_at").is_not_null() & (pl.col("erp_known_at") <= pl.col("as_of"))
    return (
        keyed.join(got, on=["po_id", "sku_id"], how="left")
        .with_columns(
            pl.when(known)
            .then(0.0)
            .otherwise((pl.col("quantity") - pl.col("_received").fill_null(0.0)).clip(0.0))
            .alias("replen_on_order")
        )
        .group_by("store_id", "sku_id")
        .agg(pl.col("replen_on_order").sum())
    )


def stock_position(positions: pl.DataFrame, own: pl.DataFrame) -> pl.DataFrame:
    """The position a plan sizes orders from: ``on_order`` = the ERP's open orders + units
    in transit + Replen's own POs not in the position yet; the parts kept for explanations
    (``erp_on_order, in_transit, replen_on_order, position_as_of``)."""
    return (
        positions.join(own, on=["store_id", "sku_id"], how="left")
        .with_columns(pl.col("replen_on_order").fill_null(0.0))
        .select(
            "store_id",
            "sku_id",
            "on_hand",
            (pl.col("on_order") + pl.col("in_transit") + pl.col("replen_on_order")).alias(
                "on_order"
            ),
            "backorders",
            pl.col("on_order").alias("erp_on_order"),
            "in_transit",
            "replen_on_order",
            pl.col("as_of").dt.strftime("%Y-%m-%dT%H:%M:%S%z").alias("position_as_of"),
        )
    )


def triage(
    keys: pl.DataFrame, rules: Rules, positions: pl.DataFrame, history_keys: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split store×SKUs into those a plan can size and those it cannot.

    Returns ``(plannable keys, unplanned: store_id, sku_id, reason, detail)``. A store×SKU
    needs an item rule, a stock position and sales history (for a forecast); the first
    missing one is its reason. Nothing is ever sized as if its stock were zero."""
    on = ["store_id", "sku_id"]

    def mark(frame, cols, flag):
        return frame.select(cols).unique().with_columns(pl.lit(True).alias(flag))

    flagged = (
        keys.select(on)
        .unique()
        .join(mark(rules.items, ["sku_id"], "_rule"), on="sku_id", how="left")
        .join(mark(positions, on, "_pos"), on=on, how="left")
        .join(mark(history_keys, on, "_hist"), on=on, how="left")
        .with_columns(pl.col("_rule", "_pos", "_hist").fill_null(False))
    )
    reason = (
        pl.when(~pl.col("_rule"))
        .then(pl.lit("no_rule"))
        .when(~pl.col("_pos"))
        .then(pl.lit("no_position"))
        .when(~pl.col("_hist"))
        .then(pl.lit("no_forecast"))
    )
    judged = flagged.with_columns(reason.alias("reason"))
    plannable = judged.filter(pl.col("reason").is_null()).select(on).sort(on)
    unplanned = (
        judged.filter(pl.col("reason").is_not_null())
        .select(*on, "reason", pl.col("reason").replace_strict(REASONS).alias("detail"))
        .sort("reason", *on)
    )
    return plannable, unplanned
