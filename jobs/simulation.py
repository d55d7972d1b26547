"""Policy simulation on a real history: forecast-driven (R, S) against static min/max.

Trains the champions on the history before the simulated period, then, on every review day,
forecasts from the sales known that day (models refitted, no peeking) and orders up to the
demand quantile over lead time + review period. The static min/max policy is set once from
the history before the period, the way reordering rules are set in an ERP. Each policy is run
over a grid of settings (service levels; cover multipliers) to draw its service/inventory
curve, and compared at the same fill rate.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.sales import last_date
from forecasting.predict import forecast
from forecasting.train import train
from kernel.distribution import quantile
from replenishment.leadtime import lead_time_demand
from replenishment.simulate import min_max_rule, order_up_to_rule, plot_tradeoff, simulate

__all__ = ["SimulationReport", "run_simulation"]

SERVICE_LEVELS = (0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995)
COVER_FACTORS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


@dataclass
class SimulationReport:
    days: int
    series: int
    fill_target: float
    runs: list[dict[str, Any]] = field(default_factory=list)
    at_target: dict[str, dict[str, float] | None] = field(default_factory=dict)
    inventory_saving: float | None = None  # 1 - (R,S) inventory / min-max inventory
    plot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "series": self.series,
            "fill_target": self.fill_target,
            "at_target": self.at_target,
            "inventory_saving": self.inventory_saving,
            "plot": self.plot,
            "runs": self.runs,
        }


def run_simulation(
    history: pl.DataFrame,
    *,
    days: int = 182,
    lead_time: np.ndarray | int = 3,
    review_period: int = 7,
    unit_cost: np.ndarray | None = None,
    pack_size: np.ndarray | None = None,
    fill_target: float = 0.95,
    service_levels: tuple[float, ...] = SERVICE_LEVELS,
    cover_factors: tuple[float, ...] = COVER_FACTORS,
    plot: Path | None = None,
    backtest_horizon: int = 28,
    on_step: Callable[[str], None] | None = None,
) -> SimulationReport:
    """Simulate the last ``days`` of ``history`` (store_id, sku_id, date, units)."""
    end = last_date(history)
    start = end - timedelta(days=days - 1)
    keys = history.select("store_id", "sku_id").unique().sort("store_id", "sku_id")
    n = keys.height
    matrix = _matrix(history, keys, start, end)
    before = history.filter(pl.col("date") < start)
    if before.is_empty():
        raise ValueError(f"history must start before the simulated {days} days ({start})")
    lead = np.broadcast_to(np.asarray(lead_time, dtype=np.int64), (n,)).copy()
    protection = lead + review_period

    if on_step:
        on_step("training champions on the history before the simulated period")
    champions = train(before, horizon=backtest_horizon, n_windows=3).champions
    review_days = list(range(0, days, review_period))
    means: dict[int, np.ndarray] = {}
    sds: dict[int, np.ndarray] = {}
    spans = keys.with_columns(
        pl.Series("protection_days", protection.astype(float)),
        pl.lit(0.0).alias("lead_time_std"),
        pl.lit(0.5).alias("service_level"),
    )
    for i, t in enumerate(review_days):
        if on_step:
            on_step(f"forecast for review {i + 1}/{len(review_days)}")
        known = history.filter(pl.col("date") < start + timedelta(days=t))
        fc = forecast(
            known,
            champions,
            horizon=int(protection.max()),
            quantiles=[0.5],
            model_version="simulation",
        )
        ltd = keys.join(lead_time_demand(fc, spans), on=["store_id", "sku_id"], how="left")
        means[t] = ltd["demand_mean"].fill_null(0.0).to_numpy()
        sds[t] = ltd["demand_sd"].fill_null(0.0).to_numpy()

    # Static min/max from the last 90 days before the period (what a planner would set).
    recent = _matrix(history, keys, start - timedelta(days=90), start - timedelta(days=1))
    daily = recent.mean(axis=1)
    initial = np.ceil(daily * protection)
    report = SimulationReport(days=days, series=n, fill_target=fill_target)
    curves: dict[str, list[tuple[float, float]]] = {"forecast (R,S)": [], "static min/max": []}

    def run(policy: str, setting: float, rule: Any) -> None:
        res = simulate(
            matrix,
            lead_time=lead,
            review_period=review_period,
            rule=rule,
            initial_on_hand=initial,
            unit_cost=unit_cost,
            pack_size=pack_size,
        )
        row = {"policy": policy, "setting": setting, **res.to_dict()}
        report.runs.append(row)
        curves["forecast (R,S)" if policy == "rs" else "static min/max"].append(
            (res.avg_on_hand_value, res.fill_rate)
        )

    for level in service_levels:
        if on_step:
            on_step(f"simulating (R,S) at service level {level}")

        def target(t: int, level: float = level) -> np.ndarray:
            last_review = t - t % review_period
            return quantile(means[last_review], sds[last_review], level)

        run("rs", level, order_up_to_rule(target))
    for factor in cover_factors:
        minimum = daily * lead * factor
        run("minmax", factor, min_max_rule(minimum, minimum + daily * review_period))

    for policy in ("rs", "minmax"):
        report.at_target[policy] = _at_fill(
            [r for r in report.runs if r["policy"] == policy], fill_target
        )
    rs, mm = report.at_target["rs"], report.at_target["minmax"]
    if rs and mm and mm["avg_on_hand_value"] > 0:
        report.inventory_saving = round(1 - rs["avg_on_hand_value"] / mm["avg_on_hand_value"], 4)
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot_tradeoff(curves, plot, fill_target)
        report.plot = str(plot)
    return report


def _matrix(history: pl.DataFrame, keys: pl.DataFrame, start: Any, end: Any) -> np.ndarray:
    """Units as series × days, zero-filled, series in ``keys`` order."""
    dates = pl.date_range(start, end, interval="1d", eager=True).alias("date")
    grid = keys.join(dates.to_frame(), how="cross")
    full = grid.join(
        history.select("store_id", "sku_id", "date", "units"),
        on=["store_id", "sku_id", "date"],
        how="left",
    ).with_columns(pl.col("units").fill_null(0.0))
    return (
        full.sort("store_id", "sku_id", "date")["units"]
        .to_numpy()
        .reshape(keys.height, dates.len())
    )


def _at_fill(runs: list[dict[str, Any]], target: float) -> dict[str, float] | None:
    """The cheapest setting reaching ``target``, interpolated between grid points."""
    pts = sorted(runs, key=lambda r: r["avg_on_hand_value"])
    for lo, hi in itertools.pairwise(pts):
        if lo["fill_rate"] < target <= hi["fill_rate"]:
            w = (target - lo["fill_rate"]) / (hi["fill_rate"] - lo["fill_rate"])
            return {
                "setting": lo["setting"] + w * (hi["setting"] - lo["setting"]),
                "fill_rate": target,
                "avg_on_hand_value": lo["avg_on_hand_value"]
                + w * (hi["avg_on_hand_value"] - lo["avg_on_hand_value"]),
                "avg_on_hand_units": lo["avg_on_hand_units"]
                + w * (hi["avg_on_hand_units"] - lo["avg_on_hand_units"]),
            }
    reached = [r for r in pts if r["fill_rate"] >= target]
    if reached:
        r = reached[0]
        return {k: r[k] for k in ("setting", "fill_rate", "avg_on_hand_value", "avg_on_hand_units")}
    return None
