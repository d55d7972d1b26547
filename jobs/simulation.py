"""Policy simulation on a real history: forecast-driven (R, S) against static min/max.

Trains the champions on the history before the simulated period, then, on every review
period, forecasts from the sales known then (models refitted, no peeking) and orders up to
the demand quantile over lead time + review period. The static min/max policy is set once
from the history before the period, the way reordering rules are set in an ERP. Each policy
is run over a grid of settings (service levels; cover multipliers) to draw its
service/inventory curve, and compared at the same fill rate. Every duration is in periods of
the history's frequency (days, weeks or months).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.sales import last_date
from forecasting.candidates import freq_of
from forecasting.predict import forecast
from forecasting.train import train
from jobs.runtime import MasterDataMissing, Runtime
from kernel.distribution import quantile
from kernel.errors import InvalidInput
from replenishment.leadtime import lead_time_demand
from replenishment.simulate import min_max_rule, order_up_to_rule, plot_tradeoff, simulate

__all__ = ["SimulationReport", "run_simulation", "simulate_history"]

SERVICE_LEVELS = (0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995)
COVER_FACTORS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


@dataclass
class SimulationReport:
    periods: int
    freq: str
    series: int
    fill_target: float
    runs: list[dict[str, Any]] = field(default_factory=list)
    at_target: dict[str, dict[str, float] | None] = field(default_factory=dict)
    inventory_saving: float | None = None  # 1 - (R,S) inventory / min-max inventory
    plot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "periods": self.periods,
            "freq": self.freq,
            "series": self.series,
            "fill_target": self.fill_target,
            "at_target": self.at_target,
            "inventory_saving": self.inventory_saving,
            "plot": self.plot,
            "runs": self.runs,
        }


def simulate_history(
    rt: Runtime,
    history: pl.DataFrame,
    *,
    freq: str = "daily",
    lead_time: int | None = None,
    need_rules: bool = False,
    **options: Any,
) -> SimulationReport:
    """Simulate ``history`` with each series' lead time, unit cost and pack size from the
    loaded rules (lead times converted to periods of ``freq``, rounded up). Series the rules
    do not cover, or all when none are loaded, get ``lead_time`` periods (default: 3 days'
    worth), cost 1 and packs of 1. ``need_rules``: refuse to run without rules."""
    f = freq_of(freq)
    keys = history.select("store_id", "sku_id").unique().sort("store_id", "sku_id")
    default = lead_time if lead_time is not None else int(np.ceil(3 / f.days))
    try:
        rules = rt.rules()
    except MasterDataMissing:
        if need_rules and lead_time is None:
            raise
        rules = None
    cost = pack = None
    lead: Any = default
    if rules is not None:
        per = (
            keys.join(rules.items, on="sku_id", how="left")
            .join(rules.suppliers, on="supplier_id", how="left")
            .sort("store_id", "sku_id")
        )
        if lead_time is None:
            days = per["lead_time_mean"].to_numpy().astype(float)
            lead = np.where(np.isnan(days), default, np.ceil(days / f.days)).astype(int)
        cost = per["unit_cost"].fill_null(1.0).to_numpy()
        pack = per["pack_size"].fill_null(1).to_numpy()
    return run_simulation(
        history, freq=freq, lead_time=lead, unit_cost=cost, pack_size=pack, **options
    )


def run_simulation(
    history: pl.DataFrame,
    *,
    periods: int = 182,
    freq: str = "daily",
    lead_time: np.ndarray | int = 3,
    review_period: int = 7,
    unit_cost: np.ndarray | None = None,
    pack_size: np.ndarray | None = None,
    fill_target: float = 0.95,
    service_levels: tuple[float, ...] = SERVICE_LEVELS,
    cover_factors: tuple[float, ...] = COVER_FACTORS,
    plot: Path | None = None,
    backtest_horizon: int | None = None,
    on_step: Callable[[str], None] | None = None,
) -> SimulationReport:
    """Simulate the last ``periods`` of ``history`` (store_id, sku_id, date, units; one row
    per period of ``freq``). Lead time and review period are in periods too."""
    f = freq_of(freq)
    days = periods
    end = last_date(history)
    start = _shift(end, -(periods - 1), f.alias)
    keys = history.select("store_id", "sku_id").unique().sort("store_id", "sku_id")
    n = keys.height
    matrix = _matrix(history, keys, start, end, f.alias)
    before = history.filter(pl.col("date") < start)
    if before.is_empty():
        raise InvalidInput(
            f"history must start before the simulated {days} periods ({start})",
            field="periods",
            value=days,
            rule="days.within_history",
            hint="simulate fewer --periods, or give a longer --history",
        )
    lead = np.broadcast_to(np.asarray(lead_time, dtype=np.int64), (n,)).copy()
    protection = lead + review_period

    if on_step:
        on_step("training champions on the history before the simulated period")
    horizon = backtest_horizon or f.backtest
    champions = train(before, horizon=horizon, n_windows=3, freq=freq).champions
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
        known = history.filter(pl.col("date") < _shift(start, t, f.alias))
        fc = forecast(
            known,
            champions,
            horizon=int(protection.max()),
            quantiles=[0.5],
            model_version="simulation",
            freq=freq,
        )
        ltd = keys.join(lead_time_demand(fc, spans), on=["store_id", "sku_id"], how="left")
        means[t] = ltd["demand_mean"].fill_null(0.0).to_numpy()
        sds[t] = ltd["demand_sd"].fill_null(0.0).to_numpy()

    # Static min/max from the last ~90 days before the period (what a planner would set).
    lookback = int(np.ceil(90 / f.days))
    recent = _matrix(
        history, keys, _shift(start, -lookback, f.alias), _shift(start, -1, f.alias), f.alias
    )
    daily = recent.mean(axis=1)  # mean units per period
    initial = np.ceil(daily * protection)
    report = SimulationReport(periods=days, freq=freq, series=n, fill_target=fill_target)
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


def _shift(day: date, periods: int, interval: str) -> date:
    """``day`` moved by ``periods`` (negative: back) of ``interval`` (``1d``, ``1w``, ``1mo``)."""
    unit = interval[1:]
    moved = pl.select(pl.lit(day).dt.offset_by(f"{periods}{unit}")).item()
    assert isinstance(moved, date)
    return moved


def _matrix(
    history: pl.DataFrame, keys: pl.DataFrame, start: Any, end: Any, interval: str = "1d"
) -> np.ndarray:
    """Units as series × periods, zero-filled, series in ``keys`` order."""
    dates = pl.date_range(start, end, interval=interval, eager=True).alias("date")
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
