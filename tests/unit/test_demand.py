from datetime import date, timedelta

import polars as pl
import pytest

from forecasting.candidates import FREQS
from forecasting.demand import classify
from forecasting.history import to_training_frame

_STEP = {"daily": "1d", "weekly": "1w", "monthly": "1mo"}


def _series(sku: str, units: list[float], freq: str = "daily") -> pl.DataFrame:
    """``units`` as the last periods up to one common end, so every series ends together."""
    dates = pl.date_range(date(1990, 1, 1), date(2030, 1, 1), interval=_STEP[freq], eager=True)
    return pl.DataFrame(
        {"store_id": "S1", "sku_id": sku, "date": dates.tail(len(units)), "units": units}
    )


def test_classes_follow_syntetos_boylan_cuts() -> None:
    n = 120
    history = pl.concat(
        [
            _series("smooth", [5.0, 6.0] * (n // 2)),
            _series("erratic", [1.0, 20.0] * (n // 2)),
            _series("intermittent", [0.0, 0.0, 3.0] * (n // 3)),
            _series("lumpy", [0.0, 0.0, 1.0, 0.0, 0.0, 30.0] * (n // 6)),
            _series("new", [1.0] * 30),
            _series("inactive", [2.0] * 40 + [0.0] * 80),
        ]
    )
    got = dict(classify(history).select("sku_id", "demand_class").iter_rows())
    names = ("smooth", "erratic", "intermittent", "lumpy", "new", "inactive")
    assert got == {name: name for name in names}


@pytest.mark.parametrize("freq", ["daily", "weekly", "monthly"])
def test_activity_thresholds_count_periods_of_the_history_frequency(freq) -> None:
    f = FREQS[freq]
    long = f.min_history + f.inactive + 10
    busy = [3.0, 4.0] * long
    history = pl.concat(
        [
            _series("idle_just_long_enough", busy[:long] + [0.0] * f.inactive, freq),
            _series("idle_one_period_less", busy[:long] + [0.0] * (f.inactive - 1), freq),
            _series("one_period_short", busy[: f.min_history - 1], freq),
            _series("just_long_enough", busy[: f.min_history], freq),
        ]
    )
    got = dict(classify(history, freq=freq).select("sku_id", "demand_class").iter_rows())
    assert got["idle_just_long_enough"] == "inactive"
    assert got["idle_one_period_less"] not in ("inactive", "new")
    assert got["one_period_short"] == "new"
    assert got["just_long_enough"] not in ("inactive", "new")


def test_a_weekly_series_that_sold_two_weeks_ago_is_not_inactive() -> None:
    # 14 days is more than 8 days, but 2 weeks is fewer than 8 weeks.
    units = [5.0] * 40 + [0.0, 0.0]
    history = _series("w", units, "weekly")
    assert (history["date"][-1] - history["date"][-3]) == timedelta(days=14)
    assert classify(history, freq="weekly")["demand_class"][0] == "smooth"


@pytest.mark.parametrize(("freq", "window"), [("daily", 28), ("weekly", 8), ("monthly", 6)])
def test_a_stockout_period_is_imputed_from_the_frequency_window(freq, window) -> None:
    # Old sales of 100 lie just outside the window, recent sales of 2 inside it.
    units = [100.0] * 5 + [2.0] * window + [0.0]
    history = _series("x", units, freq).with_columns(
        pl.int_range(pl.len()).eq(pl.len() - 1).alias("stockout")
    )
    assert to_training_frame(history, freq=freq)["y"][-1] == pytest.approx(2.0)


def test_weekly_training_keeps_a_series_that_sold_two_weeks_ago() -> None:
    from forecasting.train import train

    history = pl.concat(
        [_series(f"sku{i}", [float(4 + i % 3), 6.0] * 30 + [0.0, 0.0], "weekly") for i in range(4)]
    )
    result = train(history, horizon=4, n_windows=2, freq="weekly")
    assert set(result.champions["demand_class"]) == {"smooth"}
    assert "zero" not in set(result.champions["model"])
