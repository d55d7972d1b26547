"""Policy simulation end to end on a synthetic chain (forecasting + simulator)."""

import pytest

from jobs.simulation import run_simulation

pytestmark = pytest.mark.slow


def test_forecast_policy_is_compared_with_min_max_at_the_same_fill(chain, tmp_path) -> None:
    history = chain.demand.select(
        "store_id", "sku_id", "date", chain.demand["demand"].cast(float).alias("units")
    )
    report = run_simulation(
        history,
        days=56,
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
