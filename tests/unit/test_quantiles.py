from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from forecasting.quantiles import gamma_quantile, lead_time_demand, quantile_column


def test_quantile_column_names() -> None:
    assert [quantile_column(q) for q in (0.5, 0.95, 0.975, 0.005)] == [
        "q50",
        "q95",
        "q97_5",
        "q0_5",
    ]


def test_gamma_quantile_matches_moments_and_edges() -> None:
    q = gamma_quantile(np.array([10.0, 0.0, 4.0]), np.array([3.0, 2.0, 0.0]), 0.9)
    assert q[0] == pytest.approx(stats.gamma.ppf(0.9, a=100 / 9, scale=0.9))
    assert q[1] == 0.0 and q[2] == 4.0
    draws = np.random.default_rng(0).gamma(100 / 9, 0.9, 200_000)
    assert (draws <= q[0]).mean() == pytest.approx(0.9, abs=0.005)


def _forecast(days: int, mean: float = 2.0, sd: float = 1.0) -> pl.DataFrame:
    d0 = date(2024, 1, 1)
    return pl.DataFrame(
        {
            "store_id": "S1",
            "sku_id": "A",
            "date": [d0 + timedelta(days=i) for i in range(days)],
            "mean": mean,
            "sd": sd,
            "cum_sd_factor": 1.0,
            "model": "ses",
            "model_version": "3",
        }
    )


def _spans(p: float, lt_std: float = 0.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_id": ["S1"],
            "sku_id": ["A"],
            "protection_days": [p],
            "lead_time_std": [lt_std],
            "service_level": [0.95],
        }
    )


def test_fractional_protection_period_counts_part_of_a_day() -> None:
    row = lead_time_demand(_forecast(10), _spans(4.5)).row(0, named=True)
    assert row["demand_mean"] == pytest.approx(9.0)
    assert row["demand_sd"] == pytest.approx(np.sqrt(4.5))
    assert row["demand_quantile"] > row["demand_mean"]
    assert row["model_version"] == "3"


def test_lead_time_variability_widens_the_quantile() -> None:
    fixed = lead_time_demand(_forecast(10), _spans(5)).row(0, named=True)
    wobbly = lead_time_demand(_forecast(10), _spans(5, lt_std=1.5)).row(0, named=True)
    assert wobbly["demand_sd"] == pytest.approx(np.sqrt(5 + 4 * 1.5**2))
    assert wobbly["demand_quantile"] > fixed["demand_quantile"]


def test_horizon_shorter_than_protection_is_an_error() -> None:
    with pytest.raises(ValueError, match="shorter than the protection period"):
        lead_time_demand(_forecast(3), _spans(5))


def test_error_growth_factor_scales_with_the_protection_period() -> None:
    fc = _forecast(40, sd=1.0).with_columns(
        pl.lit(2.0).alias("cum_sd_factor"), pl.lit(28).alias("cum_sd_horizon")
    )
    at_28 = lead_time_demand(fc, _spans(28)).row(0, named=True)
    at_1 = lead_time_demand(fc, _spans(1)).row(0, named=True)
    assert at_28["demand_sd"] == pytest.approx(2.0 * np.sqrt(28))  # k as measured
    assert at_1["demand_sd"] == pytest.approx(1.0)  # one day: no autocorrelation to add
