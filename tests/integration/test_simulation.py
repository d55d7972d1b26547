"""Policy simulation end to end on a synthetic chain (forecasting + simulator)."""

from datetime import timedelta

import polars as pl
import pytest

from jobs.simulation import run_simulation

pytestmark = pytest.mark.slow


def test_forecast_policy_is_compared_with_min_max_at_the_same_fill(chain, tmp_path) -> None:
    history = chain.demand.select(
        "store_id", "sku_id", "date", chain.demand["demand"].cast(float).alias("units")
    )
    report = run_simulation(
        history,
        periods=56,
        lead_time=2,
        review_period=7,
        plot=tmp_path / "curve.png",
        backtest_horizon=7,
    )
    assert report.series == 16 and (tmp_path / "curve.png").stat().st_size > 1000
    rs = [r for r in report.runs if r["policy"] == "rs"]
    fills = [r["fill_rate"] for r in sorted(rs, key=lambda r: r["setting"])]
    assert fills == sorted(fills), "a higher service level must not serve worse"
    assert all(0 <= r["fill_rate"] <= 1 and r["orders"] > 0 for r in report.runs)
    assert set(report.at_target) == {"rs", "minmax"}


def test_a_weekly_history_is_simulated_in_weeks(chain, tmp_path) -> None:
    from jobs.simulation import _matrix

    daily = chain.demand.select(
        "store_id", "sku_id", "date", chain.demand["demand"].cast(float).alias("units")
    )
    weekly = (
        daily.sort("date")
        .group_by_dynamic("date", every="1w", group_by=["store_id", "sku_id"])
        .agg(pl.col("units").sum())
    )
    report = run_simulation(weekly, periods=14, freq="weekly", lead_time=1, review_period=1)
    assert (report.periods, report.freq, report.series) == (14, "weekly", 16)
    assert all(r["orders"] > 0 and 0 < r["fill_rate"] <= 1 for r in report.runs)
    end = weekly["date"].max()
    keys = weekly.select("store_id", "sku_id").unique().sort("store_id", "sku_id")
    grid = _matrix(weekly, keys, end - timedelta(weeks=13), end, "1w")
    assert grid.shape == (16, 14) and grid.sum() > 0  # weeks, not days
