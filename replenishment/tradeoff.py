"""Policies compared on replays: static min/max levels as a baseline, the least stock each
policy needs to reach a fill rate, and the service/stock trade-off curve."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from kernel.files import write_figure
from replenishment.simulate import DemandFn, Replay

__all__ = ["at_fill_rate", "min_max", "plot_replays", "plot_tradeoff"]


def min_max(levels: pl.DataFrame) -> DemandFn:
    """Static min/max reordering rules, as set in an ERP, for :func:`replay`.

    ``levels``: ``store_id, sku_id, min_units, max_units, daily_mean`` and optionally
    ``from_date`` (levels revised over time: each day uses the latest revision on or before
    it). On an order day a line at or below its min orders up to its max, then through the
    same constraints as any plan; a line without levels never orders.
    """
    keys = ["store_id", "sku_id"]
    revised = "from_date" in levels.columns

    def demand(day: date, spans: pl.DataFrame) -> pl.DataFrame:
        now = levels
        if revised:
            now = levels.filter(pl.col("from_date") <= day).filter(
                pl.col("from_date") == pl.col("from_date").max().over(keys)
            )
        return (
            spans.select(*keys, "protection_days")
            .join(now, on=keys, how="left")
            .select(
                *keys,
                (pl.col("daily_mean").fill_null(0.0) * pl.col("protection_days")).alias(
                    "demand_mean"
                ),
                pl.col("max_units").fill_null(0.0).alias("demand_quantile"),
                pl.lit(0.0).alias("demand_sd"),
                pl.col("daily_mean").fill_null(0.0),
                pl.lit("min/max").alias("model_version"),
                pl.lit("minmax").alias("policy"),
                pl.col("min_units").fill_null(-1.0).alias("reorder_point"),
            )
        )

    return demand


def at_fill_rate(points: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The least ``avg_on_hand_value`` reaching fill rate ``target`` among policy settings.

    ``points``: one dict per setting with ``fill_rate`` and ``avg_on_hand_value`` (other
    keys are carried). Interpolates linearly on the upper concave hull of fill rate against
    stock — the most favourable reading of a grid of settings, given to every policy
    alike — between its two points around ``target``. None if no setting reaches it; the
    result names the two settings in ``interpolated_between``.
    """
    hull: list[dict[str, Any]] = []
    for p in sorted(points, key=lambda p: (p["avg_on_hand_value"], -p["fill_rate"])):
        if hull and p["fill_rate"] <= hull[-1]["fill_rate"]:
            continue  # dominated: another setting serves at least as well for less
        while len(hull) >= 2 and _below_chord(hull[-2], hull[-1], p):
            hull.pop()
        hull.append(p)
    above = [p for p in hull if p["fill_rate"] >= target]
    if not above:
        return None
    hi = above[0]
    below = [p for p in hull if p["fill_rate"] < target]
    if not below:
        return {**hi, "interpolated_between": [hi, hi]}
    lo = below[-1]
    w = (target - lo["fill_rate"]) / (hi["fill_rate"] - lo["fill_rate"])
    value = lo["avg_on_hand_value"] + w * (hi["avg_on_hand_value"] - lo["avg_on_hand_value"])
    return {"fill_rate": target, "avg_on_hand_value": value, "interpolated_between": [lo, hi]}


def _below_chord(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> bool:
    """Whether ``b`` lies on or under the straight line from ``a`` to ``c``."""
    ax, ay = a["avg_on_hand_value"], a["fill_rate"]
    bx, by = b["avg_on_hand_value"], b["fill_rate"]
    cx, cy = c["avg_on_hand_value"], c["fill_rate"]
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax) >= 0


def plot_tradeoff(
    curves: dict[str, list[tuple[float, float]]], path: Path, fill_target: float | None = None
) -> None:
    """Fill rate against average stock value, one line per policy (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in curves.items():
        pts = sorted(points)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ls="", label=name)
    if fill_target is not None:
        ax.axhline(fill_target, color="grey", ls="--", lw=1, label=f"target {fill_target:.0%}")
    ax.set_xlabel("average stock on hand (value)")
    ax.set_ylabel("fill rate")
    ax.set_title("Service vs stock under the same constraints")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        write_figure(fig, path, dpi=100)
    finally:
        plt.close(fig)


def plot_replays(replays: dict[str, Replay], path: Path) -> None:
    """Stock value on hand and cumulative lost units day by day, one line per replay (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for name, run in replays.items():
        dates = run.daily["date"].to_list()
        top.plot(dates, run.daily["on_hand_value"].to_list(), label=name)
        bottom.plot(dates, run.daily["lost"].cum_sum().to_list(), label=name)
    top.set_ylabel("stock on hand (value)")
    bottom.set_ylabel("lost sales (units, cumulative)")
    top.set_title("What-if: the replayed period day by day")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    try:
        write_figure(fig, path, dpi=100)
    finally:
        plt.close(fig)
