"""Order-size arithmetic over many store×SKU rows at once (pure, vectorised with polars).

Every step is a column, so each line explains itself and the identity
``quantity = raw_need + pack_adjustment + moq_adjustment + capacity_adjustment +
shelf_life_adjustment + moq_cancel_adjustment`` always holds (the last one cancels a line
that a cap pushed under its MOQ: the supplier would refuse it).
"""

from __future__ import annotations

import polars as pl

from kernel.errors import InvalidInput

__all__ = ["EXPLANATION_COLUMNS", "POLICIES", "order_quantities", "order_up_to"]

POLICIES = ("rs", "sS", "sQ", "minmax")

EXPLANATION_COLUMNS = (
    "policy",
    "demand_mean",
    "safety_stock",
    "target_level",
    "reorder_point",
    "on_hand",
    "on_order",
    "backorders",
    "position",
    "raw_need",
    "pack_size",
    "after_pack",
    "pack_adjustment",
    "moq_units",
    "after_moq",
    "moq_adjustment",
    "capacity_adjustment",
    "shelf_life_adjustment",
    "moq_cancel_adjustment",
    "quantity",
)

_DEFAULTS: dict[str, object] = {
    "backorders": 0.0,
    "moq_units": 0,
    "round_up_fraction": 0.0,
    "max_capacity": None,
    "min_presentation": 0.0,
    "shelf_life_days": None,
    "daily_mean": None,
    "reorder_point": None,
    "order_quantity": None,
    "policy": "rs",
}


def order_quantities(rows: pl.DataFrame) -> pl.DataFrame:
    """Size orders under each row's ``policy`` and constraints.

    Needs ``demand_mean`` (demand over the protection period), ``demand_quantile`` (that
    demand at the service level), ``on_hand``, ``on_order``, ``pack_size``. Optional:
    ``backorders``, ``moq_units``, ``round_up_fraction`` (round a partial pack up only when
    it is at least this fraction of a pack; 0 = always up), ``max_capacity`` (shelf units),
    ``min_presentation`` (units always on display), ``shelf_life_days`` with ``daily_mean``
    (never hold more than sells before expiry), ``policy`` (``rs`` order-up-to each review,
    default; ``sS``/``minmax`` order up to the target only when the position is at or
    below ``reorder_point``; ``sQ`` order ``order_quantity`` at the reorder point).
    """
    rows = rows.with_columns(
        [pl.lit(v).alias(k) for k, v in _DEFAULTS.items() if k not in rows.columns]
    )
    unknown = set(rows["policy"].unique().to_list()) - set(POLICIES)
    if unknown:
        raise InvalidInput(
            f"policy {sorted(unknown)} unknown; choose from {POLICIES}",
            field="policy",
            value=sorted(unknown)[0],
            rule="policy.known",
        )
    f64 = pl.Float64
    pack = pl.col("pack_size").cast(f64)
    moq_packs = (pl.col("moq_units").cast(f64) / pack).ceil() * pack
    position = (
        pl.col("on_hand").cast(f64).fill_null(0.0)
        + pl.col("on_order").cast(f64).fill_null(0.0)
        - pl.col("backorders").cast(f64).fill_null(0.0)
    )
    target = pl.max_horizontal(
        pl.col("demand_quantile").cast(f64), pl.col("min_presentation").cast(f64).fill_null(0.0)
    )
    triggered = (
        pl.when(pl.col("policy") == "rs")
        .then(pl.lit(True))
        .otherwise(pl.col("position") <= pl.col("reorder_point").cast(f64).fill_null(-1e300))
    )
    need = (
        pl.when(~pl.col("_triggered"))
        .then(0.0)
        .when(pl.col("policy") == "sQ")
        .then(pl.col("order_quantity").cast(f64).fill_null(0.0))
        .otherwise(pl.col("target_level") - pl.col("position"))
        .clip(lower_bound=0.0)
    )
    packs = pl.col("raw_need") / pack
    whole = (packs - 1e-9).floor().clip(lower_bound=0.0)
    remainder = packs - whole
    round_up = (remainder > 1e-9) & (remainder >= pl.col("round_up_fraction").cast(f64) - 1e-9)
    after_pack = (whole + round_up.cast(f64)) * pack
    # Caps: room on the shelf, and what sells before it expires; both in whole packs.
    room = pl.col("max_capacity").cast(f64) - pl.col("position")
    sellable = pl.col("daily_mean").cast(f64) * pl.col("shelf_life_days").cast(f64) - pl.col(
        "position"
    )
    cap_packs = lambda e: (e / pack + 1e-9).floor().clip(lower_bound=0.0) * pack  # noqa: E731
    # One lazy query: on the few rows of one simulated day, per-step overhead dominates.
    return (
        rows.lazy()
        .with_columns(
            (target - pl.col("demand_mean").cast(f64)).alias("safety_stock"),
            target.alias("target_level"),
            position.alias("position"),
        )
        .with_columns(triggered.alias("_triggered"))
        .with_columns(need.alias("raw_need"))
        .with_columns(after_pack.alias("after_pack"))
        .with_columns(
            pl.when((pl.col("after_pack") > 0) & (pl.col("after_pack") < moq_packs))
            .then(moq_packs)
            .otherwise(pl.col("after_pack"))
            .alias("after_moq")
        )
        .with_columns(
            pl.min_horizontal(pl.col("after_moq"), cap_packs(room).fill_null(float("inf"))).alias(
                "_after_cap"
            )
        )
        .with_columns(
            pl.min_horizontal(
                pl.col("_after_cap"), cap_packs(sellable).fill_null(float("inf"))
            ).alias("_after_life")
        )
        # A cap that pushes a line under its MOQ cancels it: the supplier would refuse it.
        .with_columns(
            pl.when(
                (pl.col("_after_life") < moq_packs) & (pl.col("_after_life") < pl.col("after_moq"))
            )
            .then(0.0)
            .otherwise(pl.col("_after_life"))
            .alias("_final")
        )
        .with_columns(
            (pl.col("after_pack") - pl.col("raw_need")).alias("pack_adjustment"),
            (pl.col("after_moq") - pl.col("after_pack")).alias("moq_adjustment"),
            (pl.col("_after_cap") - pl.col("after_moq")).alias("capacity_adjustment"),
            (pl.col("_after_life") - pl.col("_after_cap")).alias("shelf_life_adjustment"),
            (pl.col("_final") - pl.col("_after_life")).alias("moq_cancel_adjustment"),
            pl.col("_final").round(0).cast(pl.Int64).alias("quantity"),
        )
        .drop("_triggered", "_after_cap", "_after_life", "_final")
        .collect()
    )


def order_up_to(rows: pl.DataFrame) -> pl.DataFrame:
    """Periodic-review order-up-to (R, S): :func:`order_quantities` with ``policy = rs``."""
    return order_quantities(rows.with_columns(pl.lit("rs").alias("policy")))
