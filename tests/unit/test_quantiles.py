from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from kernel.distribution import expected_shortage, quantile, quantile_column
from kernel.errors import InvalidInput
from replenishment.leadtime import lead_time_demand


def test_quantile_column_names() -> None:
    assert [quantile_column(q) for q in (0.5, 0.95, 0.975, 0.005)] == [
        "q50",
        "q95",
        "q97_5",
        "q0_5",
    ]


def _negbin_draws(mean: float, sd: float, n: int = 400_000) -> np.ndarray:
    p = mean / sd**2
    return np.random.default_rng(0).negative_binomial(mean * p / (1 - p), p, n)


def test_quantile_is_the_negative_binomial_with_those_moments() -> None:
    q = quantile(np.array([10.0, 0.0, 4.0]), np.array([5.0, 2.0, 0.0]), 0.9)
    p = 10 / 25
    assert q[0] == stats.nbinom.ppf(0.9, 10 * p / (1 - p), p)
    assert q[1] == 0.0 and q[2] == 4.0  # no demand; no uncertainty
    draws = _negbin_draws(10.0, 5.0)
    assert (draws <= q[0]).mean() >= 0.9 > (draws <= q[0] - 1).mean()


def test_underdispersed_demand_falls_back_to_poisson() -> None:
    assert quantile(9.0, 2.0, 0.95)[0] == stats.poisson.ppf(0.95, 9.0)


def test_expected_shortage_matches_a_simulation() -> None:
    draws = _negbin_draws(10.0, 5.0)
    for stock in (0.0, 7.5, 15.0, 40.0):
        simulated = np.maximum(draws - stock, 0).mean()
        assert expected_shortage(10.0, 5.0, stock)[0] == pytest.approx(simulated, abs=0.02)
    poisson = np.random.default_rng(1).poisson(6.0, 400_000)
    assert expected_shortage(6.0, 2.0, 4.0)[0] == pytest.approx(
        np.maximum(poisson - 4.0, 0).mean(), abs=0.02
    )
    assert expected_shortage(10.0, 0.0, 4.0)[0] == 6.0
    assert expected_shortage(10.0, 5.0, -3.0)[0] == pytest.approx(13.0)  # backorders too


def _forecast(days: int, mean: float = 2.0, sd: float = 1.0) -> pl.DataFrame:
    d0 = date(2024, 1, 1)
    return pl.DataFrame(
        {
            "store_id": "S1",
            "sku_id": "A",
            "date": [d0 + timedelta(days=i) for i in range(days)],
            "mean": mean,
            "sd": sd,
            "level_var": 0.0,
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
    with pytest.raises(InvalidInput, match="shorter than the protection period"):
        lead_time_demand(_forecast(3), _spans(5))


def test_level_variance_grows_with_the_square_of_the_protection_period() -> None:
    fc = _forecast(40, sd=1.0).with_columns(pl.lit(0.05).alias("level_var"))
    at_28 = lead_time_demand(fc, _spans(28)).row(0, named=True)
    at_7 = lead_time_demand(fc, _spans(7)).row(0, named=True)
    # Σ sd² − c·Σ μ² (each day's own noise) + c·(Σ μ)² (the level the days share).
    assert at_28["demand_sd"] == pytest.approx(np.sqrt(28 - 0.05 * 28 * 4 + 0.05 * 56**2))
    assert at_7["demand_sd"] == pytest.approx(np.sqrt(7 - 0.05 * 7 * 4 + 0.05 * 14**2))
    at_1 = lead_time_demand(fc, _spans(1)).row(0, named=True)
    assert at_1["demand_sd"] == pytest.approx(1.0)  # one day: the day's own law
    alone = lead_time_demand(_forecast(40, sd=1.0), _spans(28)).row(0, named=True)
    assert alone["demand_sd"] == pytest.approx(np.sqrt(28))  # no level_var: independent days


def _level_shifted(
    n_series: int,
    windows: int,
    level_var: float,
    seed: int,
    wild: tuple[float, float] = (0.0, 0.0),
) -> pl.DataFrame:
    """Backtest-shaped rows whose errors share a level within each window: demand is
    Poisson around ``μ·λ`` with one gamma ``λ`` (mean 1, variance ``level_var``) per
    series and window, the forecast ``μ`` (autocorrelated errors, as on M5). ``wild``
    ``(share, variance)``: that share of series×windows draws its level with the larger
    variance instead (a heavier tail than any one gamma)."""
    mu = np.random.default_rng(99).uniform(0.5, 8.0, n_series)  # the same series every time
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(windows):
        cutoff = date(2024, 1, 1) + timedelta(days=28 * w)
        lam = rng.gamma(1 / level_var, level_var, n_series)
        share, var = wild
        if share:
            odd = rng.random(n_series) < share
            lam[odd] = rng.gamma(1 / var, var, int(odd.sum()))
        for d in range(28):
            y = rng.poisson(mu * lam)
            rows.append(
                pl.DataFrame(
                    {
                        "unique_id": [f"s{i}" for i in range(n_series)],
                        "demand_class": "smooth",
                        "cutoff": cutoff,
                        "ds": cutoff + timedelta(days=d + 1),
                        "y": y.astype(float),
                        "yhat": mu,
                    }
                )
            )
    return pl.concat(rows)


def _total_coverage(
    rows: pl.DataFrame, sd: pl.DataFrame, level_var: float, span: int, level_map: str = ""
) -> list:
    """Coverage of the totals over ``span`` days through the planner's own helper."""
    fc = rows.join(sd, on="unique_id").select(
        pl.lit("S").alias("store_id"),
        pl.concat_str("unique_id", pl.col("cutoff").cast(pl.String)).alias("sku_id"),
        pl.col("ds").alias("date"),
        pl.col("yhat").alias("mean"),
        "sd",
        pl.lit(level_var).alias("level_var"),
        pl.lit(level_map or None, dtype=pl.String).alias("level_map"),
        "y",
    )
    actual = (
        fc.with_columns(pl.int_range(pl.len()).over("sku_id").alias("_d"))
        .filter(pl.col("_d") < span)
        .group_by("store_id", "sku_id")
        .agg(pl.col("y").sum())
    )
    out = []
    for level in (0.8, 0.9, 0.95):
        spans = actual.select(
            "store_id",
            "sku_id",
            pl.lit(float(span)).alias("protection_days"),
            pl.lit(0.0).alias("lead_time_std"),
            pl.lit(level).alias("service_level"),
        )
        demand = lead_time_demand(fc.drop("y"), spans).join(actual, on=["store_id", "sku_id"])
        out.append(float((demand["y"] <= demand["demand_quantile"]).mean()))
    return out


def test_calibrated_level_variance_covers_totals_of_every_length_on_new_windows() -> None:
    from forecasting.quantiles import calibrate

    past = _level_shifted(300, 4, 0.08, seed=0)
    factors, covered = calibrate(past, 28)
    c = factors["level_var"].item()
    assert 0.03 < c < 0.2
    # Out-of-sample on the backtest: every span's totals within 2 points of nominal.
    share = covered.group_by("scope", "level").agg(pl.col("hits").sum() / pl.col("n").sum())
    for scope in ("total7", "total14", "total21", "total28"):
        got = share.filter(pl.col("scope") == scope).sort("level")["hits"].to_list()
        assert got == pytest.approx([0.8, 0.9, 0.95], abs=0.02), scope
    # New windows, daily sd = each series' error on the past ones, as in production.
    sd = past.group_by("unique_id").agg(
        (pl.col("yhat") - pl.col("y")).pow(2).mean().sqrt().alias("sd")
    )
    fresh = _level_shifted(300, 6, 0.08, seed=1)
    for span in (7, 14, 28):
        calibrated = _total_coverage(fresh, sd, c, span)
        assert calibrated == pytest.approx([0.8, 0.9, 0.95], abs=0.03), span
    # Without the level variance, the 28-day totals miss by far more than 2 points.
    uncalibrated = _total_coverage(fresh, sd, 0.0, 28)
    nominal = (0.8, 0.9, 0.95)
    assert all(got < want - 0.08 for got, want in zip(uncalibrated, nominal, strict=True))


def test_an_actual_is_under_a_quantile_exactly_when_its_cdf_reaches_the_level() -> None:
    from kernel.distribution import cdf

    rng = np.random.default_rng(2)
    mean = rng.uniform(0, 20, 2000)
    sd = rng.uniform(0, 12, 2000) * (rng.random(2000) < 0.9)
    y = rng.integers(0, 40, 2000).astype(float)
    for level in (0.5, 0.8, 0.95):
        under = y <= quantile(mean, sd, level)
        assert np.array_equal(under, cdf(mean, sd, y, strict=True) < level)
    assert cdf(10.0, 3.0, 10.0)[0] == pytest.approx(stats.poisson.cdf(10, 10.0))


def test_recalibrated_level_interpolates_the_map_and_keeps_levels_in_order() -> None:
    from kernel.distribution import level_map_json, recalibrated_level

    text = level_map_json([1, 7, 28], [0.5, 0.9], [[0.0, 0.0], [0.0, -0.4], [0.2, 1.0]])
    logit = lambda q: np.log(q / (1 - q))  # noqa: E731
    expit = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert recalibrated_level(0.9, 1, text)[0] == pytest.approx(0.9)  # one day: the law's own
    assert recalibrated_level(0.9, 7, text)[0] == pytest.approx(expit(logit(0.9) - 0.4))
    assert recalibrated_level(0.9, 28, text)[0] == pytest.approx(expit(logit(0.9) + 1.0))
    assert recalibrated_level(0.9, 60, text)[0] == pytest.approx(expit(logit(0.9) + 1.0))
    # Halfway in days between 7 and 28, and in logit between 0.5 and 0.9.
    assert recalibrated_level(0.9, 17.5, text)[0] == pytest.approx(expit(logit(0.9) + 0.3))
    mid = expit((logit(0.5) + logit(0.9)) / 2)
    assert recalibrated_level(mid, 28, text)[0] == pytest.approx(expit(logit(mid) + 0.6))
    assert recalibrated_level(0.99, 28, text)[0] == pytest.approx(expit(logit(0.99) + 1.0))
    assert recalibrated_level(0.95, 14, "")[0] == 0.95  # no map: the level itself
    grid = np.linspace(0.3, 0.995, 200)
    for days in (1, 5, 7, 20, 28, 40):
        assert np.all(np.diff(recalibrated_level(grid, days, text)) > 0)


def test_level_map_covers_totals_whose_errors_have_heavier_tails_than_the_law() -> None:
    from forecasting.quantiles import calibrate

    wild = (0.1, 1.0)  # one series×window in ten is far off, the rest close
    past = _level_shifted(300, 4, 0.01, seed=0, wild=wild)
    factors, covered = calibrate(past, 28)
    c, level_map = factors["level_var"].item(), factors["level_map"].item()
    share = covered.group_by("scope", "level").agg(pl.col("hits").sum() / pl.col("n").sum())
    for scope in ("total7", "total14", "total28"):
        got = share.filter(pl.col("scope") == scope).sort("level")["hits"].to_list()
        assert got == pytest.approx([0.8, 0.9, 0.95], abs=0.02), scope
    sd = past.group_by("unique_id").agg(
        (pl.col("yhat") - pl.col("y")).pow(2).mean().sqrt().alias("sd")
    )
    fresh = _level_shifted(300, 6, 0.01, seed=1, wild=wild)
    for span in (7, 14, 28):
        assert _total_coverage(fresh, sd, c, span, level_map) == pytest.approx(
            [0.8, 0.9, 0.95], abs=0.025
        ), span
    # The level variance alone cannot fit both ends: without the map a level misses.
    alone = [*_total_coverage(fresh, sd, c, 7), *_total_coverage(fresh, sd, c, 28)]
    gaps = [abs(g - w) for g, w in zip(alone, (0.8, 0.9, 0.95) * 2, strict=True)]
    assert max(gaps) > 0.03, alone


def test_the_planner_asks_the_law_at_the_mapped_level_for_its_protection_period() -> None:
    from kernel.distribution import level_map_json, recalibrated_level

    text = level_map_json([1, 28], [0.5, 0.95], [[0.0, 0.0], [0.0, 1.2]])
    fc = _forecast(40, mean=3.0, sd=2.5).with_columns(pl.lit(text).alias("level_map"))
    plain = lead_time_demand(fc.drop("level_map"), _spans(21)).row(0, named=True)
    mapped = lead_time_demand(fc, _spans(21)).row(0, named=True)
    level = recalibrated_level(0.95, 21, text)[0]
    assert level > 0.95
    assert mapped["demand_quantile"] == quantile(mapped["demand_mean"], mapped["demand_sd"], level)
    assert mapped["demand_quantile"] > plain["demand_quantile"]
    assert mapped["demand_sd"] == plain["demand_sd"]  # the law itself is unchanged
