"""Replay demand day by day under an ordering policy: lost sales, lead times, review days.

Pure numpy over all series at once; the policy is a function of the day and the inventory
position, so a forecast-driven policy and a static min/max run on the same engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kernel.errors import InvalidInput
from kernel.files import write_figure

__all__ = ["SimulationResult", "min_max_rule", "order_up_to_rule", "plot_tradeoff", "simulate"]

OrderRule = Callable[[int, np.ndarray], np.ndarray]  # (day, position) -> order quantity


@dataclass(frozen=True)
class SimulationResult:
    """Totals over all series and days, and per-series arrays."""

    fill_rate: float  # units sold / units demanded
    cycle_service_level: float  # review cycles without a lost sale / cycles
    avg_on_hand_units: float  # mean end-of-day on hand, summed over series
    avg_on_hand_value: float
    stockout_days: int  # series-days ending with nothing on hand while demand was lost
    orders: int
    lost_units: float
    per_series_fill_rate: np.ndarray

    def to_dict(self) -> dict[str, float]:
        return {
            "fill_rate": round(self.fill_rate, 5),
            "cycle_service_level": round(self.cycle_service_level, 5),
            "avg_on_hand_units": round(self.avg_on_hand_units, 3),
            "avg_on_hand_value": round(self.avg_on_hand_value, 3),
            "stockout_days": self.stockout_days,
            "orders": self.orders,
            "lost_units": round(self.lost_units, 3),
        }


def simulate(
    demand: np.ndarray,
    *,
    lead_time: np.ndarray,
    review_period: int | np.ndarray,
    rule: OrderRule,
    initial_on_hand: np.ndarray,
    unit_cost: np.ndarray | None = None,
    pack_size: np.ndarray | None = None,
) -> SimulationResult:
    """Simulate ``demand`` (series × days) with lost sales.

    Each day: orders due arrive, demand is served from stock (the rest is lost), and on
    review days (every ``review_period`` days from day 0; one number or one per series)
    ``rule(day, position)`` decides the order, rounded up to ``pack_size``, which arrives
    ``lead_time`` days later. Position = on hand + on order.
    """
    n, days = demand.shape
    lead = np.asarray(lead_time, dtype=np.int64)
    if lead.shape != (n,) or (lead < 0).any():
        raise InvalidInput(
            f"lead_time must be {n} non-negative whole days",
            field="lead_time",
            value=lead_time,
            rule="lead_time.nonnegative",
        )
    review = np.broadcast_to(np.asarray(review_period, dtype=np.int64), (n,))
    if (review < 1).any():
        raise InvalidInput(
            f"review_period must be >= 1 period, got {review_period}",
            field="review_period",
            value=review_period,
            rule="review_period.positive",
        )
    cost = np.ones(n) if unit_cost is None else np.asarray(unit_cost, dtype=float)
    pack = np.ones(n) if pack_size is None else np.asarray(pack_size, dtype=float)
    pipeline = np.zeros((n, days + int(lead.max()) + 1))
    on_hand = np.asarray(initial_on_hand, dtype=float).copy()
    on_order = np.zeros(n)
    sold_total = np.zeros(n)
    demand_total = np.zeros(n)
    on_hand_sum = 0.0
    value_sum = 0.0
    stockout_days = 0
    orders = 0
    cycles = cycles_ok = 0
    lost_in_cycle = np.zeros(n, dtype=bool)
    rows = np.arange(n)
    for t in range(days):
        arriving = pipeline[:, t]
        on_hand += arriving
        on_order -= arriving
        d = demand[:, t]
        sold = np.minimum(on_hand, d)
        on_hand -= sold
        lost = d - sold
        sold_total += sold
        demand_total += d
        lost_in_cycle |= lost > 1e-9
        stockout_days += int(((on_hand <= 1e-9) & (lost > 1e-9)).sum())
        on_hand_sum += on_hand.sum()
        value_sum += (on_hand * cost).sum()
        due = t % review == 0
        if due.any():
            if t > 0:
                cycles += int(due.sum())
                cycles_ok += int((due & ~lost_in_cycle).sum())
                lost_in_cycle[due] = False
            qty = np.maximum(np.asarray(rule(t, on_hand + on_order), dtype=float), 0.0)
            qty = np.where(due, np.ceil(qty / pack - 1e-9) * pack, 0.0)
            placed = qty > 0
            orders += int(placed.sum())
            pipeline[rows[placed], t + lead[placed]] += qty[placed]
            # An order with zero lead time arrives today, after today's sales.
            same_day = placed & (lead == 0)
            on_hand[same_day] += qty[same_day]
            pipeline[rows[same_day], t] -= qty[same_day]
            on_order += qty - np.where(same_day, qty, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_series = np.where(demand_total > 0, sold_total / demand_total, 1.0)
    total = demand_total.sum()
    return SimulationResult(
        fill_rate=float(sold_total.sum() / total) if total else 1.0,
        cycle_service_level=cycles_ok / cycles if cycles else 1.0,
        avg_on_hand_units=on_hand_sum / days,
        avg_on_hand_value=value_sum / days,
        stockout_days=stockout_days,
        orders=orders,
        lost_units=float(total - sold_total.sum()),
        per_series_fill_rate=per_series,
    )


def order_up_to_rule(targets: Callable[[int], np.ndarray]) -> OrderRule:
    """(R, S): on each review day order up to ``targets(day)``."""
    return lambda t, position: targets(t) - position


def min_max_rule(minimum: np.ndarray, maximum: np.ndarray) -> OrderRule:
    """Static min/max (Odoo/ERPNext reordering rules): at or below min, order up to max."""
    lo, hi = np.asarray(minimum, dtype=float), np.asarray(maximum, dtype=float)
    return lambda t, position: np.where(position <= lo, hi - position, 0.0)


def plot_tradeoff(
    curves: dict[str, list[tuple[float, float]]], path: Path, fill_target: float | None = None
) -> None:
    """Fill rate against average inventory value, one line per policy (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in curves.items():
        pts = sorted(points)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    if fill_target is not None:
        ax.axhline(fill_target, color="grey", ls="--", lw=1, label=f"target {fill_target:.0%}")
    ax.set_xlabel("average inventory on hand (value)")
    ax.set_ylabel("fill rate")
    ax.set_title("Service vs inventory: the trade-off of each policy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        write_figure(fig, path, dpi=100)
    finally:
        plt.close(fig)
