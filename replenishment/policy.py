"""Order-up-to policy arithmetic over many store×SKU rows at once (pure, vectorised)."""

from __future__ import annotations

import polars as pl

__all__ = ["EXPLANATION_COLUMNS", "order_up_to"]

EXPLANATION_COLUMNS = (
    "demand_mean",
    "safety_stock",
    "target_level",
    "on_hand",
    "on_order",
    "position",
    "raw_need",
    "pack_size",
    "after_pack",
    "pack_adjustment",
    "moq_units",
    "after_moq",
    "moq_adjustment",
    "quantity",
)


def order_up_to(rows: pl.DataFrame) -> pl.DataFrame:
    """Periodic-review order-up-to (R, S) quantities with their explanation.

    Needs ``demand_mean`` (forecast over lead time + review period), ``demand_quantile``
    (that demand at the service level), ``on_hand``, ``on_order``, ``pack_size`` and
    ``moq_units``. Target ``S`` = the quantile = mean + safety stock; raw need =
    max(0, S − (on hand + on order)); rounded up to whole packs; a positive quantity below
    the line MOQ is raised to the MOQ (in whole packs).
    """
    pack = pl.col("pack_size").cast(pl.Float64)
    moq_packs = (pl.col("moq_units").cast(pl.Float64) / pack).ceil() * pack
    return (
        rows.with_columns(
            (pl.col("demand_quantile") - pl.col("demand_mean")).alias("safety_stock"),
            pl.col("demand_quantile").alias("target_level"),
            (pl.col("on_hand").fill_null(0.0) + pl.col("on_order").fill_null(0.0)).alias(
                "position"
            ),
        )
        .with_columns(
            (pl.col("target_level") - pl.col("position")).clip(lower_bound=0.0).alias("raw_need")
        )
        .with_columns(
            # A hair of tolerance keeps 12.000000001 from becoming a second pack.
            ((pl.col("raw_need") / pack - 1e-9).ceil().clip(lower_bound=0.0) * pack).alias(
                "after_pack"
            )
        )
        .with_columns(
            pl.when((pl.col("after_pack") > 0) & (pl.col("after_pack") < moq_packs))
            .then(moq_packs)
            .otherwise(pl.col("after_pack"))
            .alias("after_moq")
        )
        .with_columns(
            (pl.col("after_pack") - pl.col("raw_need")).alias("pack_adjustment"),
            (pl.col("after_moq") - pl.col("after_pack")).alias("moq_adjustment"),
            pl.col("after_moq").cast(pl.Int64).alias("quantity"),
        )
    )
