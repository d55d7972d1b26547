"""Data problems that make a plan wrong or incomplete, found from plain frames (pure).

- ``stale_pos_feed``: a store whose newest POS sale is older than the threshold;
- ``missing_stock_position``: a store×SKU that sells and has a rule but no stock position
  (it is not planned);
- ``missing_rule``: a SKU that sells but has no item rule (no supplier: not planned);
- ``unknown_store`` / ``unknown_sku``: POS lines for a store or SKU that the master data
  does not know;
- ``suspect_history``: a block of sales history that looks like no real demand (a level
  shift without the weekly cycle, or prices gone missing: a broken extract, a till
  outage), per chain, store or series, as the latest retrain found and masked it
  (:func:`forecasting.checks.find_suspect_blocks`), said once at its widest scope. Its day
  is the block's first day, so confirming it once clears it for good.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from replenishment.worklist import EXCEPTION_SCHEMA

__all__ = ["data_problems"]


def data_problems(
    *,
    today: date,
    freshness: pl.DataFrame,
    sold: pl.DataFrame,
    stock_keys: pl.DataFrame | None,
    rule_skus: set[str] | None,
    known_stores: set[str] | None,
    known_skus: set[str] | None,
    stale_after_hours: float,
    suspect_blocks: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every data problem as an exception row (see ``EXCEPTION_SCHEMA``).

    ``freshness``: ``store_id, newest, lag_seconds``; ``sold``: the store×SKU pairs seen in
    POS (``store_id, sku_id``); ``stock_keys``: store×SKU with a stock position (None: no
    stock feed at all); ``rule_skus``: SKUs with an item rule (None: no rules loaded);
    ``known_*``: master data (None: not loaded, nothing is called unknown);
    ``suspect_blocks``: the data checks' blocks (``forecasting.checks.CHECK_COLUMNS``;
    None: no retrain has checked the history yet).
    """
    parts: list[pl.DataFrame] = []

    def add(frame: pl.DataFrame) -> None:
        parts.append(frame.select([pl.col(c).cast(t) for c, t in EXCEPTION_SCHEMA.items()]))

    none_s, none_i = pl.lit(None, pl.String), pl.lit(None, pl.Int64)
    stale = freshness.filter(pl.col("lag_seconds") > stale_after_hours * 3600)
    add(
        stale.select(
            pl.lit("stale_pos_feed").alias("type"),
            pl.col("store_id").alias("subject"),
            pl.lit(today).alias("day"),
            pl.format(
                "store {}: newest POS sale {} h old (threshold {} h)",
                "store_id",
                (pl.col("lag_seconds") / 3600).round(1),
                pl.lit(stale_after_hours),
            ).alias("message"),
            none_i.alias("po_id"),
            "store_id",
            none_s.alias("sku_id"),
            none_s.alias("supplier_id"),
            (pl.col("lag_seconds") / 3600).alias("value"),
        )
    )
    pairs = sold.select("store_id", "sku_id").unique()
    if rule_skus is not None:
        ruled = pairs.filter(pl.col("sku_id").is_in(sorted(rule_skus)))
        missing_rule = (
            pairs.filter(~pl.col("sku_id").is_in(sorted(rule_skus)))
            .group_by("sku_id")
            .agg(pl.len().alias("stores"))
        )
        add(
            missing_rule.select(
                pl.lit("missing_rule").alias("type"),
                pl.col("sku_id").alias("subject"),
                pl.lit(today).alias("day"),
                pl.format(
                    "SKU {} sells in {} store(s) but has no item rule (no supplier): not planned",
                    "sku_id",
                    "stores",
                ).alias("message"),
                none_i.alias("po_id"),
                none_s.alias("store_id"),
                "sku_id",
                none_s.alias("supplier_id"),
                pl.col("stores").cast(pl.Float64).alias("value"),
            )
        )
    else:
        ruled = pairs
    positions = (
        stock_keys.select("store_id", "sku_id").unique()
        if stock_keys is not None
        else pl.DataFrame(schema={"store_id": pl.String, "sku_id": pl.String})
    )
    missing_stock = ruled.join(positions, on=["store_id", "sku_id"], how="anti")
    add(
        missing_stock.select(
            pl.lit("missing_stock_position").alias("type"),
            pl.format("{}/{}", "store_id", "sku_id").alias("subject"),
            pl.lit(today).alias("day"),
            pl.format("{}/{} has no stock position: not planned", "store_id", "sku_id").alias(
                "message"
            ),
            none_i.alias("po_id"),
            "store_id",
            "sku_id",
            none_s.alias("supplier_id"),
            pl.lit(None, pl.Float64).alias("value"),
        )
    )
    for column, known, kind in (
        ("store_id", known_stores, "unknown_store"),
        ("sku_id", known_skus, "unknown_sku"),
    ):
        if known is None:
            continue
        unknown = pairs.filter(~pl.col(column).is_in(sorted(known))).group_by(column).len()
        add(
            unknown.select(
                pl.lit(kind).alias("type"),
                pl.col(column).alias("subject"),
                pl.lit(today).alias("day"),
                pl.format(
                    f"POS sales for {column}={{}} which the master data does not know "
                    "({} store×SKU pairs)",
                    column,
                    "len",
                ).alias("message"),
                none_i.alias("po_id"),
                (pl.col(column) if column == "store_id" else none_s).alias("store_id"),
                (pl.col(column) if column == "sku_id" else none_s).alias("sku_id"),
                none_s.alias("supplier_id"),
                pl.col("len").cast(pl.Float64).alias("value"),
            )
        )
    if suspect_blocks is not None and suspect_blocks.height:
        add(_suspect(suspect_blocks))
    return pl.concat(parts) if parts else pl.DataFrame(schema=EXCEPTION_SCHEMA)


def _widest(blocks: pl.DataFrame) -> pl.DataFrame:
    """Blocks not inside a wider one of the same rule (a series inside its store's or the
    chain's block, a store inside the chain's), with ``inside``: how many narrower blocks
    each one covers. A broken extract flags the chain, every store and most series at once;
    the planner needs it said once."""
    rank = {"chain": 0, "store": 1, "series": 2}
    b = blocks.with_row_index("_b").with_columns(
        pl.col("scope").replace_strict(rank, return_dtype=pl.Int8).alias("_rank")
    )
    wide = b.select(
        pl.col("_b").alias("_w"),
        pl.col("_rank").alias("_wrank"),
        pl.col("store_id").alias("_wstore"),
        "rule",
        pl.col("start").alias("_wstart"),
        pl.col("end").alias("_wend"),
    )
    pairs = b.join(wide, on="rule").filter(
        (pl.col("_wrank") < pl.col("_rank"))
        & ((pl.col("_wrank") == 0) | (pl.col("_wstore") == pl.col("store_id")))
        & (pl.col("_wstart") <= pl.col("start"))
        & (pl.col("_wend") >= pl.col("end"))
    )
    covered = pairs["_b"].unique()
    inside = pairs.group_by("_w").agg(pl.col("_b").n_unique().alias("inside"))
    return (
        b.filter(~pl.col("_b").is_in(covered.implode()))
        .join(inside, left_on="_b", right_on="_w", how="left")
        .with_columns(pl.col("inside").fill_null(0))
        .sort("_b")
        .drop("_b", "_rank")
    )


def _suspect(blocks: pl.DataFrame) -> pl.DataFrame:
    blocks = _widest(blocks)
    where = (
        pl.when(pl.col("scope") == "chain")
        .then(pl.lit("chain"))
        .when(pl.col("scope") == "store")
        .then(pl.col("store_id"))
        .otherwise(pl.format("{}/{}", "store_id", "sku_id"))
    )
    whole = (
        pl.when(pl.col("scope") == "chain")
        .then(pl.lit("the whole chain"))
        .when(pl.col("scope") == "store")
        .then(pl.format("store {}", "store_id"))
        .otherwise(pl.format("{}/{}", "store_id", "sku_id"))
    )
    why = (
        pl.when(pl.col("rule") == "price_missing")
        .then(pl.lit("prices missing on most selling days where they were recorded before"))
        .otherwise(
            pl.format(
                "level ×{} of the weeks before with no weekly cycle ({} of the usual)",
                pl.col("level_ratio").round(2),
                pl.col("cycle").round(2),
            )
        )
    )
    return blocks.select(
        pl.lit("suspect_history").alias("type"),
        pl.format("{} {}", where, "rule").alias("subject"),
        pl.col("start").alias("day"),
        pl.format(
            "sales history {}..{} ({} weeks), {}: {}{}; masked at retrain, not fitted as "
            "demand — check the extract or the tills for those days",
            "start",
            "end",
            "weeks",
            whole,
            why,
            pl.when(pl.col("inside") > 0)
            .then(pl.format(" (covering {} store or series block(s) found too)", "inside"))
            .otherwise(pl.lit("")),
        ).alias("message"),
        pl.lit(None, pl.Int64).alias("po_id"),
        "store_id",
        "sku_id",
        pl.lit(None, pl.String).alias("supplier_id"),
        pl.col("level_ratio").alias("value"),
    )
