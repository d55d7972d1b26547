"""The global models: the weekday profile and the boosted trees trained across series."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from forecasting.boosting import booster_forecast, fit_booster
from forecasting.covariates import model_frame
from forecasting.profile import profile_forecast

D0 = date(2025, 1, 6)  # a Monday
WEEK = np.array([0.8, 0.8, 0.9, 1.0, 1.2, 1.5, 0.8])


def _chain(
    days: int = 500, series: int = 12, promo_lift: float = 1.0, seed: int = 0
) -> pl.DataFrame:
    """Poisson sales with a weekly cycle; promotions (every 5th week, Mon-Wed) lift sales."""
    rng = np.random.default_rng(seed)
    dates = [D0 + timedelta(days=i) for i in range(days)]
    dow = np.array([d.weekday() for d in dates])
    promo = np.array([(i // 7) % 5 == 0 and d < 3 for i, d in enumerate(dow)], dtype=float)
    rows = []
    for k in range(series):
        level = rng.uniform(3, 30)
        mean = level * WEEK[dow] * np.where(promo > 0, promo_lift, 1.0)
        rows.append(
            pl.DataFrame(
                {
                    "store_id": f"S{k % 3}",
                    "sku_id": f"A{k}",
                    "date": dates,
                    "units": rng.poisson(mean).astype(float),
                    "promo": promo,
                    "department": "D1" if k % 2 else "D2",
                }
            )
        )
    return pl.concat(rows)


def test_profile_is_the_recent_level_times_the_weekday_share() -> None:
    history = _chain(days=400)
    frame = model_frame(history)
    cutoff = history["date"].max()
    fc = profile_forecast(frame, [cutoff], 14, long_weight=0.0, shrink=0.0)
    one = fc.filter(pl.col("unique_id") == fc["unique_id"][0]).sort("ds")
    assert one["ds"].to_list() == [cutoff + timedelta(days=i) for i in range(1, 15)]
    by_day = dict(zip([d.weekday() for d in one["ds"]], one["profile"], strict=False))
    assert by_day[5] / by_day[0] == pytest.approx(1.5 / 0.8, rel=0.25)  # Saturday vs Monday
    level = frame.filter(
        (pl.col("unique_id") == one["unique_id"][0]) & (pl.col("ds") > cutoff - timedelta(days=28))
    )["y"].mean()
    assert one["profile"].head(7).mean() == pytest.approx(level, rel=1e-6)  # shares average 1


def test_a_slow_series_borrows_its_weekly_rhythm_from_its_group() -> None:
    history = _chain(days=400).with_columns(
        pl.when((pl.col("sku_id") == "A1") & (pl.col("date").dt.weekday() == 7))
        .then(pl.col("units") * 4)
        .otherwise(pl.col("units"))
        .alias("units")
    )
    frame = model_frame(history)
    cutoff = history["date"].max()
    own = profile_forecast(frame, [cutoff], 7, shrink=0.0)
    shrunk = profile_forecast(frame, [cutoff], 7, shrink=1e9)

    def sunday(fc: pl.DataFrame) -> float:
        row = fc.filter(
            pl.col("unique_id").str.ends_with("\x1fA1") & (pl.col("ds").dt.weekday() == 7)
        )
        return float(row["profile"][0])

    # Its own busy Sundays (share ~2.4) vs its group's (A1 and A7: ~1.7).
    assert sunday(own) > 1.25 * sunday(shrunk)


def test_the_boosted_model_learns_planned_promotions_across_series() -> None:
    history = _chain(promo_lift=2.0)
    frame = model_frame(history)
    cutoff = history["date"].max()
    booster = fit_booster(frame, cutoff, 14)
    assert booster is not None and booster.rows > 1000
    future = (
        frame.select("unique_id", "store_id", "department")
        .unique()
        .join(pl.DataFrame({"ds": [cutoff + timedelta(days=i) for i in range(1, 15)]}), how="cross")
        .with_columns(
            # promotion planned on the first Monday-Wednesday ahead only
            pl.when(pl.col("ds") <= cutoff + timedelta(days=7))
            .then((pl.col("ds").dt.weekday() <= 3).cast(pl.Float64))
            .otherwise(0.0)
            .alias("promo")
        )
    )
    fc = booster_forecast(booster, frame, [cutoff], 14, future=future).with_columns(
        pl.col("ds").dt.weekday().alias("dow"),
        (pl.col("ds") <= cutoff + timedelta(days=7)).alias("wk1"),
    )
    weekday = fc.filter(pl.col("dow") <= 3).group_by("wk1").agg(pl.col("gbm").sum())
    lift = dict(weekday.iter_rows())
    assert lift[True] > 1.5 * lift[False]  # promoted Mon-Wed vs the same days unpromoted
    assert (fc["gbm"] >= 0).all()


def test_without_enough_history_there_is_no_booster() -> None:
    frame = model_frame(_chain(days=20, series=2))
    assert fit_booster(frame, frame["ds"].max(), 14) is None


def test_a_feature_added_by_hand_is_learnt_when_it_drives_demand() -> None:
    history = _chain(days=400)
    heat = (pl.col("date").dt.ordinal_day() % 3 == 0).cast(pl.Float64)
    history = history.with_columns(heat.alias("heat")).with_columns(
        (pl.col("units") * (1 + 2 * pl.col("heat"))).alias("units")
    )
    frame = model_frame(history, ("heat",))
    cutoff = history["date"].max()
    booster = fit_booster(frame, cutoff, 14, extra=("heat",))
    assert booster is not None and "heat" in booster.features
    future = (
        frame.select("unique_id", "store_id", "department")
        .unique()
        .join(pl.DataFrame({"ds": [cutoff + timedelta(days=i) for i in range(1, 15)]}), how="cross")
        .with_columns((pl.col("ds").dt.ordinal_day() % 3 == 0).cast(pl.Float64).alias("heat"))
    )
    fc = booster_forecast(booster, frame, [cutoff], 14, future=future).join(
        future.select("unique_id", "ds", "heat"), on=["unique_id", "ds"]
    )
    by_heat = dict(fc.group_by("heat").agg(pl.col("gbm").mean()).iter_rows())
    assert by_heat[1.0] > 2 * by_heat[0.0]
