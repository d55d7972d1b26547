"""Replay a sales history day by day through the shipped planner and every rule.

Each simulated day, in this order: deliveries due that day arrive; units older than their
item's shelf life expire (waste, oldest first); the suppliers whose order day it is are
reviewed — stock position (on hand + on order) and the demand over each line's protection
period go through :func:`~replenishment.planner.plan_rows` and
:func:`~replenishment.planner.size_orders`, the same code as the daily plan (policy, packs,
MOQ, capacity, shelf life, supplier minimum, budget) — and each placed PO gets a lead time
drawn from its supplier's mean and spread; then customers buy, oldest units first, and
what is not on the shelf is lost (lost sales). Pure numpy/polars over all series at once;
the forecast comes from a callable, so any forecaster (or a static min/max) can drive it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from kernel.errors import InvalidInput
from replenishment.planner import plan_rows, protection_spans, size_orders
from replenishment.rules import Rules

__all__ = ["DEMAND_COLUMNS", "DemandFn", "Replay", "lead_time_days", "replay"]

DemandFn = Callable[[date, pl.DataFrame], pl.DataFrame]
"""``(plan date, spans of the lines reviewed that day) → demand over each line's
protection period``: the columns of :data:`DEMAND_COLUMNS` (optionally ``policy``,
``reorder_point``, ``order_quantity``), one row per store×SKU of the spans."""

DEMAND_COLUMNS = (
    "store_id",
    "sku_id",
    "demand_mean",
    "demand_quantile",
    "demand_sd",
    "daily_mean",
    "model_version",
)

_KEYS = ["store_id", "sku_id"]
_EPS = 1e-9


@dataclass(frozen=True)
class Replay:
    """What happened over a replay.

    ``series``: per store×SKU totals (demand, sold, lost, waste, on-hand unit- and
    value-days, stockout days, ordered units and value, lines). ``purchase_orders``: every
    PO placed (order and drawn delivery date). ``held``: POs held under a supplier minimum.
    ``daily``: chain totals per day. ``unplanned``: store×SKUs of the history without rules
    (not replayed).
    """

    start: date
    days: int
    series: pl.DataFrame
    purchase_orders: pl.DataFrame
    held: pl.DataFrame
    daily: pl.DataFrame
    unplanned: pl.DataFrame

    def summary(self) -> pl.DataFrame:
        """One row per supplier and a last row ``supplier_id = "all"``: fill rate, average
        on-hand value and units, POs placed and held, lines, units ordered, stockout days,
        lost and wasted units."""
        per_supplier = _summarise(self.series, self.purchase_orders, self.held, self.days, True)
        overall = _summarise(self.series, self.purchase_orders, self.held, self.days, False)
        return pl.concat([per_supplier.sort("supplier_id"), overall], how="vertical_relaxed")

    def totals(self) -> dict[str, Any]:
        """The ``all`` row of :meth:`summary` as a dict."""
        return self.summary().row(-1, named=True)


def replay(
    demand: pl.DataFrame,
    rules: Rules,
    forecast: DemandFn,
    *,
    start: date,
    days: int,
    on_hand: pl.DataFrame,
    service_level: float = 0.95,
    seed: int = 0,
    on_day: Callable[[int], None] | None = None,
) -> Replay:
    """Replay ``days`` days from ``start`` with lost sales.

    ``demand``: ``store_id, sku_id, date, units`` — what customers asked for (missing days
    are zero). ``rules``: suppliers, items and overrides as the planner uses them; series
    without an item rule are not replayed (listed in :attr:`Replay.unplanned`).
    ``forecast``: see :data:`DemandFn`. ``on_hand``: ``store_id, sku_id, on_hand`` at the
    start (missing = 0). ``service_level``: for lines without an override. ``seed`` fixes
    the lead-time draws: two replays with the same seed draw the same random number for
    the same store, supplier and day (common random numbers, so rule changes compare
    without noise from the draws).
    """
    _check_inputs(demand, on_hand, days, service_level)
    planned = rules.items.select("sku_id", "supplier_id")
    all_keys = demand.select(_KEYS).unique()
    keys = (
        all_keys.join(planned, on="sku_id", how="inner")
        .sort(_KEYS)
        .with_row_index("_i")
        .with_columns(pl.col("_i").cast(pl.Int64))
    )
    unplanned = all_keys.join(planned, on="sku_id", how="anti").sort(_KEYS)
    n = keys.height
    if n == 0:
        raise InvalidInput(
            "no store×SKU of the history has an item rule: nothing to replay",
            field="sku_id",
            rule="must name an item in the rules",
            hint="load rules whose items cover the history's sku_id values",
        )
    units = _matrix(demand, keys, start, days)
    item = keys.join(
        rules.items.select("sku_id", "unit_cost", "shelf_life_days"), on="sku_id", how="left"
    ).sort("_i")
    cost = item["unit_cost"].to_numpy().astype(float)
    life = item["shelf_life_days"].fill_null(np.inf).to_numpy().astype(float)
    groups = keys.select("store_id", "supplier_id").unique().sort("store_id", "supplier_id")
    groups = groups.with_row_index("_g").with_columns(pl.col("_g").cast(pl.Int64))
    group_of = keys.join(groups, on=["store_id", "supplier_id"]).sort("_i")["_g"].to_numpy()
    leads = lead_time_days(groups.join(rules.suppliers, on="supplier_id").sort("_g"), days, seed)
    start_stock = (
        keys.join(on_hand.select(*_KEYS, "on_hand"), on=_KEYS, how="left")
        .sort("_i")["on_hand"]
        .fill_null(0.0)
        .cast(pl.Float64)
        .to_numpy()
    )
    shelf = _Shelf(start_stock, days, int(leads.max(initial=0)), life)
    tot = {k: np.zeros(n) for k in ("sold", "lost", "waste", "units_days", "stockout", "ordered")}
    tot["lines"] = np.zeros(n)
    daily: list[tuple[date, float, float, float, float, float]] = []
    lines: list[tuple[np.ndarray, ...]] = []  # (series, day, units, lead time) per order day
    held: list[pl.DataFrame] = []
    reviewed = _reviews_by_weekday(keys, rules, start, service_level)
    for t in range(days):
        day = start + timedelta(days=t)
        shelf.receive(t)
        waste = shelf.expire(t)
        spans = reviewed[day.weekday()].with_columns(pl.lit(day).alias("order_date"))
        if spans.height:
            demand_then = forecast(day, spans.drop("_i"))
            placed, on_hold = _review(spans, shelf, t, demand_then, rules, day)
            if placed.height:
                i = placed["_i"].to_numpy()
                q = placed["quantity"].to_numpy().astype(float)
                lead = leads[group_of[i], t]
                shelf.order(t, i, q, lead)
                tot["ordered"][i] += q
                tot["lines"][i] += 1
                lines.append((i, np.full(i.size, t), q, lead))
            if on_hold.height:
                held.append(on_hold)
        want = units[:, t]
        sold = shelf.sell(t, want)
        lost = want - sold
        end = shelf.on_hand(t)
        tot["sold"] += sold
        tot["lost"] += lost
        tot["waste"] += waste
        tot["units_days"] += end
        tot["stockout"] += lost > _EPS
        daily.append(
            (day, float(end @ cost), end.sum(), sold.sum(), lost.sum(), float(waste.sum()))
        )
        if on_day:
            on_day(t)
    series = keys.sort("_i").select(
        *_KEYS,
        "supplier_id",
        pl.Series("unit_cost", cost),
        pl.Series("demand", units.sum(axis=1)),
        pl.Series("sold", tot["sold"]),
        pl.Series("lost", tot["lost"]),
        pl.Series("waste", tot["waste"]),
        pl.Series("on_hand_unit_days", tot["units_days"]),
        pl.Series("on_hand_value_days", tot["units_days"] * cost),
        pl.Series("stockout_days", tot["stockout"].astype(np.int64)),
        pl.Series("ordered_units", tot["ordered"]),
        pl.Series("ordered_value", tot["ordered"] * cost),
        pl.Series("lines", tot["lines"].astype(np.int64)),
    )
    return Replay(
        start=start,
        days=days,
        series=series,
        purchase_orders=_purchase_orders(keys, cost, lines, start),
        held=pl.concat(held) if held else _empty_held(),
        daily=pl.DataFrame(
            daily,
            schema=["date", "on_hand_value", "on_hand_units", "sold", "lost", "waste"],
            orient="row",
        ),
        unplanned=unplanned,
    )


def lead_time_days(suppliers: pl.DataFrame, days: int, seed: int) -> np.ndarray:
    """Lead time in whole days of a PO placed on each day, per row of ``suppliers``
    (``store_id, supplier_id, lead_time_mean, lead_time_std``): shape rows × days.

    Without spread the PO lands on the planner's expected delivery day (the mean rounded
    up); with spread the lead time is drawn from a gamma law with the supplier's mean and
    standard deviation (never negative, a longer right tail) and rounded to the nearest
    day. The draws of a store×supplier depend only on ``seed`` and its ids, not on which
    other rows are present.
    """
    mean = suppliers["lead_time_mean"].to_numpy().astype(float)
    std = suppliers["lead_time_std"].to_numpy().astype(float)
    out = np.repeat(np.ceil(mean - _EPS)[:, None], days, axis=1)
    spread = np.flatnonzero((std > 0) & (mean > 0))
    if spread.size:
        from scipy import stats

        ids = suppliers.select("store_id", "supplier_id").rows()
        u = np.stack(
            [
                np.random.default_rng([seed, zlib.crc32(f"{ids[r][0]}\x1f{ids[r][1]}".encode())])
                .random(days)
                .clip(1e-12, 1 - 1e-12)
                for r in spread
            ]
        )
        shape = (mean[spread] / std[spread]) ** 2
        scale = std[spread] ** 2 / mean[spread]
        drawn = stats.gamma.ppf(u, a=shape[:, None], scale=scale[:, None])
        out[spread] = np.floor(drawn + 0.5)
    return np.maximum(out, 0).astype(np.int64)


def _reviews_by_weekday(
    keys: pl.DataFrame, rules: Rules, start: date, service_level: float
) -> dict[int, pl.DataFrame]:
    """The lines reviewed on each weekday (their supplier orders that day) with their
    protection spans, from the planner's own :func:`protection_spans`."""
    out = {}
    for offset in range(7):
        day = start + timedelta(days=offset)
        spans = protection_spans(keys.select(_KEYS), rules, day, service_level)
        out[day.weekday()] = spans.filter(pl.col("order_date") == day).join(
            keys.select(*_KEYS, "_i"), on=_KEYS
        )
    return out


def _review(
    spans: pl.DataFrame,
    shelf: _Shelf,
    t: int,
    demand: pl.DataFrame,
    rules: Rules,
    day: date,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Size the orders of the lines reviewed on ``day`` with the planner's own code."""
    missing = [c for c in DEMAND_COLUMNS if c not in demand.columns]
    if missing:
        raise InvalidInput(
            f"the forecast for {day} lacks column(s) {missing}",
            field="forecast",
            value=demand.columns,
            rule=f"must have {list(DEMAND_COLUMNS)}",
        )
    i = spans["_i"].to_numpy()
    stock = spans.select(
        *_KEYS,
        pl.Series("on_hand", shelf.on_hand(t)[i]),
        pl.Series("on_order", shelf.on_order[i]),
    )
    evaluated, held = size_orders(plan_rows(demand, stock, rules, spans))
    return evaluated.filter(pl.col("quantity") > 0), held


class _Shelf:
    """Units on hand by the day they arrived (for FIFO and expiry) and units on order by
    the day they land, for every series at once."""

    def __init__(self, on_hand: np.ndarray, days: int, max_lead: int, life: np.ndarray) -> None:
        n = on_hand.shape[0]
        self.lots = np.zeros((n, days))  # column a: received on day a, still on hand
        self.lots[:, 0] = on_hand
        self.due = np.zeros((n, days + max_lead + 1))  # column d: lands on day d
        self.on_order = np.zeros(n)
        self.life = life
        self.perishable = np.flatnonzero(np.isfinite(life))

    def receive(self, t: int) -> None:
        """Deliveries due on day ``t`` go on the shelf."""
        self.lots[:, t] += self.due[:, t]
        self.on_order -= self.due[:, t]
        self.due[:, t] = 0.0

    def expire(self, t: int) -> np.ndarray:
        """Remove units at least their shelf life old on day ``t``; returns them (waste)."""
        waste = np.zeros(self.lots.shape[0])
        p = self.perishable
        if p.size:
            age = t - np.arange(t + 1)
            old = age[None, :] >= self.life[p, None]
            block = self.lots[p, : t + 1]
            waste[p] = (block * old).sum(axis=1)
            self.lots[p, : t + 1] = np.where(old, 0.0, block)
        return waste

    def order(self, t: int, i: np.ndarray, q: np.ndarray, lead: np.ndarray) -> None:
        """Series ``i`` order ``q`` units landing ``lead`` days later (0: before today's
        customers)."""
        self.due[i, t + lead] += q
        self.on_order[i] += q
        self.receive(t)

    def on_hand(self, t: int) -> np.ndarray:
        return self.lots[:, : t + 1].sum(axis=1)

    def sell(self, t: int, want: np.ndarray) -> np.ndarray:
        """Serve ``want`` from the shelf, oldest units first (FIFO); the rest is lost."""
        stock = self.lots[:, : t + 1]
        sold = np.minimum(stock.sum(axis=1), want)
        left = np.maximum(np.cumsum(stock, axis=1) - sold[:, None], 0.0)
        self.lots[:, : t + 1] = np.diff(left, axis=1, prepend=0.0)
        return sold


def _purchase_orders(
    keys: pl.DataFrame, cost: np.ndarray, lines: list[tuple[np.ndarray, ...]], start: date
) -> pl.DataFrame:
    """One row per PO placed: supplier × store × order day (its lines share the lead time)."""
    if not lines:
        return _empty_pos()
    i, t, q, lead = (np.concatenate(parts) for parts in zip(*lines, strict=True))
    placed = pl.DataFrame(
        {"_i": i, "_t": t, "units": q, "value": q * cost[i], "lead_time_days": lead}
    ).join(keys.select("_i", "store_id", "supplier_id"), on="_i")
    return (
        placed.group_by("supplier_id", "store_id", "_t")
        .agg(
            pl.col("lead_time_days").first(),
            pl.len().alias("lines"),
            pl.col("units").sum(),
            pl.col("value").sum(),
        )
        .with_columns(
            (pl.lit(start) + pl.duration(days=pl.col("_t"))).alias("order_date"),
            (pl.lit(start) + pl.duration(days=pl.col("_t") + pl.col("lead_time_days"))).alias(
                "delivery_date"
            ),
        )
        .sort("_t", "supplier_id", "store_id")
        .select(_empty_pos().columns)
    )


def _empty_pos() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "supplier_id": pl.String,
            "store_id": pl.String,
            "order_date": pl.Date,
            "delivery_date": pl.Date,
            "lead_time_days": pl.Int64,
            "lines": pl.UInt32,
            "units": pl.Float64,
            "value": pl.Float64,
        }
    )


def _empty_held() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "supplier_id": pl.String,
            "store_id": pl.String,
            "order_date": pl.Date,
            "value": pl.Float64,
            "min_order_value": pl.Float64,
            "lines": pl.UInt32,
        }
    )


def _summarise(
    series: pl.DataFrame, pos: pl.DataFrame, held: pl.DataFrame, days: int, by_supplier: bool
) -> pl.DataFrame:
    keys = ["supplier_id"] if by_supplier else []
    label = [] if by_supplier else [pl.lit("all").alias("supplier_id")]

    def agg(frame: pl.DataFrame, *exprs: pl.Expr) -> pl.DataFrame:
        return frame.group_by(keys).agg(*exprs) if keys else frame.select(*exprs)

    s = agg(
        series,
        pl.len().cast(pl.Int64).alias("series"),
        pl.col("demand").sum(),
        pl.col("sold").sum(),
        pl.col("lost").sum(),
        pl.col("waste").sum().alias("waste_units"),
        (pl.col("waste") * pl.col("unit_cost")).sum().alias("waste_value"),
        (pl.col("on_hand_value_days").sum() / days).alias("avg_on_hand_value"),
        (pl.col("on_hand_unit_days").sum() / days).alias("avg_on_hand_units"),
        pl.col("stockout_days").sum(),
        pl.col("lines").sum(),
        pl.col("ordered_units").sum().alias("units_ordered"),
        pl.col("ordered_value").sum().alias("value_ordered"),
    ).with_columns(
        pl.when(pl.col("demand") > 0)
        .then(pl.col("sold") / pl.col("demand"))
        .otherwise(1.0)
        .alias("fill_rate"),
        *label,
    )
    o = agg(pos, pl.len().cast(pl.Int64).alias("orders"))
    h = agg(held, pl.len().cast(pl.Int64).alias("held"))
    joined = (
        s.join(o, on=keys, how="left").join(h, on=keys, how="left")
        if keys
        else pl.concat([s, o, h], how="horizontal")
    )
    return joined.with_columns(pl.col("orders", "held").fill_null(0)).select(
        "supplier_id",
        "series",
        "fill_rate",
        "avg_on_hand_value",
        "avg_on_hand_units",
        "orders",
        "held",
        "lines",
        "units_ordered",
        "value_ordered",
        "stockout_days",
        "demand",
        "sold",
        "lost",
        "waste_units",
        "waste_value",
    )


def _matrix(demand: pl.DataFrame, keys: pl.DataFrame, start: date, days: int) -> np.ndarray:
    """Units as series × days (zero-filled), series in ``keys`` ``_i`` order."""
    end = start + timedelta(days=days - 1)
    cells = (
        demand.filter(pl.col("date").is_between(start, end))
        .join(keys.select(*_KEYS, "_i"), on=_KEYS)
        .select(
            "_i",
            (pl.col("date") - pl.lit(start)).dt.total_days().alias("_t"),
            pl.col("units").cast(pl.Float64).fill_null(0.0),
        )
    )
    out = np.zeros((keys.height, days))
    np.add.at(out, (cells["_i"].to_numpy(), cells["_t"].to_numpy()), cells["units"].to_numpy())
    return out


def _check_inputs(
    demand: pl.DataFrame, on_hand: pl.DataFrame, days: int, service_level: float
) -> None:
    for name, frame, need in (
        ("demand", demand, ["store_id", "sku_id", "date", "units"]),
        ("on_hand", on_hand, ["store_id", "sku_id", "on_hand"]),
    ):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise InvalidInput(
                f"{name} lacks column(s) {missing}; has {frame.columns}",
                field=name,
                value=frame.columns,
                rule=f"must have {need}",
            )
    if days < 1:
        raise InvalidInput(f"days={days} must be >= 1", field="days", value=days, rule=">= 1")
    if not 0 < service_level < 1:
        raise InvalidInput(
            f"service_level={service_level} must lie strictly between 0 and 1",
            field="service_level",
            value=service_level,
            rule="in (0, 1)",
        )
    bad = demand.filter(pl.col("units") < 0)
    if bad.height:
        row = bad.row(0, named=True)
        raise InvalidInput(
            f"demand units={row['units']} for {row['store_id']}/{row['sku_id']} on "
            f"{row['date']} is negative; replay what customers asked for (returns excluded)",
            field="units",
            value=row["units"],
            rule=">= 0",
        )
