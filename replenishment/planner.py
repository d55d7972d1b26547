"""Today's PO suggestions: protection periods from rules, policy arithmetic, POs per supplier."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from kernel.distribution import expected_shortage
from replenishment.policy import EXPLANATION_COLUMNS, order_quantities
from replenishment.rules import Rules, next_order_date

__all__ = [
    "POSITION_PARTS",
    "Suggestion",
    "expected_shortage",
    "plan_rows",
    "protection_spans",
    "size_orders",
    "suggest",
]

_POLICY_COLUMNS = ("policy", "reorder_point", "order_quantity")
POSITION_PARTS = ("erp_on_order", "in_transit", "replen_on_order", "position_as_of")


@dataclass(frozen=True)
class Suggestion:
    """Suggested POs: one header per supplier×store×order date, lines with explanations.

    ``evaluated`` holds every store×SKU considered, ordering or not; ``held`` the POs held
    back because they stayed under the supplier's minimum order value.
    """

    headers: pl.DataFrame
    lines: pl.DataFrame
    evaluated: pl.DataFrame
    held: pl.DataFrame


def protection_spans(
    keys: pl.DataFrame, rules: Rules, plan_date: date, service_level: float
) -> pl.DataFrame:
    """Per store×SKU: supplier, order date, protection period and service level.

    An order placed on the supplier's next order day must cover demand until the order after
    it arrives: days to the order day + lead time + review period. The service level is the
    store×SKU override if any, else ``service_level``.
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
        .join(
            rules.overrides.select("store_id", "sku_id", "service_level"),
            on=["store_id", "sku_id"],
            how="left",
        )
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
        pl.col("service_level").fill_null(service_level).alias("service_level"),
    )


def suggest(
    demand: pl.DataFrame, stock: pl.DataFrame, rules: Rules, spans: pl.DataFrame
) -> Suggestion:
    """Size every store×SKU order and group positive lines into POs.

    ``demand``: ``store_id, sku_id, demand_mean, demand_quantile, demand_sd, daily_mean,
    model_version`` over each row's protection period; ``stock``: ``store_id, sku_id,
    on_hand, on_order`` (optional ``backorders``); ``spans``: from :func:`protection_spans`.
    A PO under its supplier's ``min_order_value`` is filled up (``fill``: whole packs to the
    lines with the least cover first) or held (``hold``), as the supplier rule says.
    """
    evaluated, held = size_orders(plan_rows(demand, stock, rules, spans))
    parts = [c for c in POSITION_PARTS if c in evaluated.columns]
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
            *[c for c in EXPLANATION_COLUMNS if c != "quantity"],
            "min_order_fill",
            "budget_adjustment",
            *parts,
            "quantity",
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
    return Suggestion(headers=headers, lines=lines, evaluated=evaluated, held=held)


def plan_rows(
    demand: pl.DataFrame, stock: pl.DataFrame, rules: Rules, spans: pl.DataFrame
) -> pl.DataFrame:
    """One row per store×SKU of ``spans`` with demand, stock position and every rule that
    sizes its order (the input of :func:`size_orders`).

    Columns of ``spans`` are kept (a caller may carry its own keys through). ``demand`` may
    also carry ``policy``, ``reorder_point`` and ``order_quantity`` (see
    :func:`~replenishment.policy.order_quantities`); without them the policy is (R, S).
    """
    stock_cols = [c for c in ("on_hand", "on_order", "backorders") if c in stock.columns]
    # Parts of the position kept with each line to explain it (see replenishment.position).
    parts = [c for c in POSITION_PARTS if c in stock.columns]
    policy_cols = [c for c in _POLICY_COLUMNS if c in demand.columns]
    return (
        spans.lazy()
        .join(
            demand.lazy().select(
                "store_id",
                "sku_id",
                "demand_mean",
                "demand_quantile",
                "demand_sd",
                "daily_mean",
                "model_version",
                *policy_cols,
            ),
            on=["store_id", "sku_id"],
        )
        .join(
            stock.lazy().select("store_id", "sku_id", *stock_cols, *parts),
            on=["store_id", "sku_id"],
            how="left",
        )
        .join(
            rules.items.lazy().select(
                "sku_id",
                "unit_cost",
                "pack_size",
                "moq_units",
                "shelf_life_days",
                "round_up_fraction",
            ),
            on="sku_id",
        )
        .join(
            rules.overrides.lazy().select("store_id", "sku_id", "max_capacity", "min_presentation"),
            on=["store_id", "sku_id"],
            how="left",
        )
        .join(
            rules.suppliers.lazy().select(
                "supplier_id",
                "currency",
                "min_order_value",
                "min_order_action",
                "max_order_value",
            ),
            on="supplier_id",
        )
        .with_columns(pl.col(stock_cols).cast(pl.Float64).fill_null(0.0))
        .sort("supplier_id", "store_id", "sku_id")  # joins do not keep order; ties need one
        .collect()
    )


def size_orders(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Order quantities of :func:`plan_rows` rows under the policy, each supplier's minimum
    order value per PO (supplier × store × order date) and its budget.

    Returns every row with its explanation, ``expected_delivery``, ``min_order_fill``,
    ``budget_adjustment`` and ``value``, and the POs held under their supplier's minimum.
    """
    evaluated = order_quantities(rows).with_columns(
        (
            pl.col("order_date") + pl.duration(days=pl.col("lead_time_mean").ceil().cast(pl.Int64))
        ).alias("expected_delivery"),
        pl.lit(0).alias("min_order_fill"),
        pl.lit(0).alias("budget_adjustment"),
    )
    evaluated, held = _supplier_minimum(evaluated)
    evaluated = _budget(evaluated)
    evaluated = evaluated.with_columns((pl.col("quantity") * pl.col("unit_cost")).alias("value"))
    return evaluated, held


def _supplier_minimum(evaluated: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply each supplier's minimum order value per PO: fill up, or hold the PO back."""
    keys = ["supplier_id", "store_id", "order_date"]
    value = (pl.col("quantity") * pl.col("unit_cost")).sum().over(keys)
    flagged = evaluated.with_columns(value.alias("_po_value"))
    short = (pl.col("_po_value") > 0) & (pl.col("_po_value") < pl.col("min_order_value"))
    held = flagged.filter(short & (pl.col("min_order_action") == "hold") & (pl.col("quantity") > 0))
    held_summary = held.group_by(keys, maintain_order=True).agg(
        pl.col("_po_value").first().alias("value"),
        pl.col("min_order_value").first(),
        pl.len().alias("lines"),
    )
    out = flagged.with_columns(
        pl.when(short & (pl.col("min_order_action") == "hold"))
        .then(0)
        .otherwise(pl.col("quantity"))
        .alias("quantity")
    )
    to_fill = out.filter(short & (pl.col("min_order_action") == "fill"))
    if to_fill.height:
        out = _fill(out, to_fill, keys)
    return out.drop("_po_value"), held_summary


def _cover(row: dict, added: int) -> float:
    """Stock after this order relative to the line's target (lower = needs more)."""
    return float(row["position"] + row["quantity"] + added) / max(row["target_level"], 1e-9)


def _fill(out: pl.DataFrame, to_fill: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Add whole packs, one at a time, to the line with the least cover (position + order
    relative to its target) until the PO reaches the supplier minimum."""
    extra: dict[tuple[str, str, str], int] = {}
    for _, po in to_fill.group_by(keys):
        rows = po.sort("sku_id").to_dicts()
        total = sum(r["quantity"] * r["unit_cost"] for r in rows)
        minimum = rows[0]["min_order_value"]
        added = {r["sku_id"]: 0 for r in rows}
        while total < minimum:
            pick = min(rows, key=lambda r, a=added: _cover(r, a[r["sku_id"]]))  # type: ignore[misc]
            if pick["unit_cost"] <= 0:
                break
            added[pick["sku_id"]] += int(pick["pack_size"])
            total += pick["pack_size"] * pick["unit_cost"]
        for r in rows:
            if added[r["sku_id"]]:
                extra[(r["store_id"], r["sku_id"], r["supplier_id"])] = added[r["sku_id"]]
    fill = pl.DataFrame(
        [
            {"store_id": k[0], "sku_id": k[1], "supplier_id": k[2], "_add": v}
            for k, v in extra.items()
        ],
        schema={
            "store_id": pl.String,
            "sku_id": pl.String,
            "supplier_id": pl.String,
            "_add": pl.Int64,
        },
    )
    return (
        out.join(fill, on=["store_id", "sku_id", "supplier_id"], how="left")
        .with_columns(pl.col("_add").fill_null(0))
        .with_columns(
            (pl.col("quantity") + pl.col("_add")).alias("quantity"),
            pl.col("_add").alias("min_order_fill"),
        )
        .drop("_add")
    )


def _budget(evaluated: pl.DataFrame) -> pl.DataFrame:
    """Cut POs over their supplier's ``max_order_value``: buy first the packs that avoid
    the most expected shortage per unit of money, never more than each line's own quantity;
    a line either meets its MOQ or is dropped. The cut is ``budget_adjustment``."""
    keys = ["supplier_id", "store_id", "order_date"]
    value = (pl.col("quantity") * pl.col("unit_cost")).sum().over(keys)
    over = evaluated.with_columns(value.alias("_po_value")).filter(
        pl.col("max_order_value").is_not_null()
        & (pl.col("_po_value") > pl.col("max_order_value"))
        & (pl.col("quantity") > 0)
    )
    if over.is_empty():
        return evaluated
    cuts: list[dict[str, object]] = []
    for _, po in over.group_by(keys):
        cuts += _allocate(po.sort("sku_id").to_dicts(), float(po["max_order_value"][0]))
    cut = pl.DataFrame(
        cuts,
        schema={
            "store_id": pl.String,
            "sku_id": pl.String,
            "supplier_id": pl.String,
            "_new": pl.Int64,
        },
    )
    return (
        evaluated.join(cut, on=["store_id", "sku_id", "supplier_id"], how="left")
        .with_columns(
            (pl.col("_new") - pl.col("quantity")).fill_null(0).alias("budget_adjustment"),
            pl.coalesce("_new", "quantity").alias("quantity"),
        )
        .drop("_new")
    )


def _allocate(lines: list[dict], budget: float) -> list[dict[str, object]]:
    """Greedy by expected shortage avoided per unit of money (it falls with each pack)."""
    import heapq

    chosen = {i: 0 for i in range(len(lines))}
    heap: list[tuple[float, int, int]] = []

    def push(i: int) -> None:
        r = lines[i]
        pack, have = int(r["pack_size"]), chosen[i]
        moq = -(-int(r["moq_units"]) // pack) * pack
        step = max(pack, moq) if have == 0 else pack
        if have + step > r["quantity"]:
            return
        stock = r["position"] + have
        short = expected_shortage(r["demand_mean"], r["demand_sd"], [stock, stock + step])
        gain = float(short[0] - short[1])
        cost = step * r["unit_cost"]
        heapq.heappush(heap, (-(gain / cost) if cost > 0 else -float("inf"), i, step))

    for i in chosen:
        push(i)
    spent = 0.0
    while heap:
        _, i, step = heapq.heappop(heap)
        cost = step * lines[i]["unit_cost"]
        if spent + cost > budget + 1e-9:
            continue  # this chunk does not fit; other lines' smaller ones may
        chosen[i] += step
        spent += cost
        push(i)
    return [
        {
            "store_id": r["store_id"],
            "sku_id": r["sku_id"],
            "supplier_id": r["supplier_id"],
            "_new": chosen[i],
        }
        for i, r in enumerate(lines)
    ]
