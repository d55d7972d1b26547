"""The revival model: what an inactive item sells when it sells again."""

from datetime import date, timedelta

import polars as pl
import pytest

from forecasting.candidates import candidates_for
from forecasting.revival import REVIVAL, revival_forecast, revival_rate

DAY0 = date(2024, 1, 1)


def _frame(days: int, series: dict[str, list[float]]) -> pl.DataFrame:
    return pl.concat(
        pl.DataFrame(
            {
                "unique_id": uid,
                "ds": [DAY0 + timedelta(days=d) for d in range(days)],
                "y": (ys * days)[:days],
            }
        )
        for uid, ys in series.items()
    )


def test_rate_is_what_idle_series_sold_next_over_their_usual_days() -> None:
    days = 500
    cutoff = DAY0 + timedelta(days=days - 1)
    # "asleep": sold 2 a day for 300 days, then nothing, then 1 a day from day 400 on.
    asleep = [2.0] * 300 + [0.0] * 100 + [1.0] * 100
    busy = [3.0] * days  # never idle: not counted
    frame = _frame(days, {"asleep": asleep, "busy": busy, "dead": [0.0] * days})
    rate = revival_rate(frame, cutoff, idle_days=56, ahead=28, year_days=364)
    # By hand: origins d = cutoff − 28 − 7k; "asleep" is idle at d when its last sale
    # (day 299 before day 400) is ≥ 56 days before d, and what follows is counted.
    num = den = 0.0
    for k in range(52):
        d = days - 1 - 28 - 7 * k
        last = max(i for i in range(d + 1) if asleep[i] > 0)
        if last > d - 56:
            continue
        year = asleep[max(0, d - 363) : d + 1]
        num += sum(asleep[d + 1 : d + 29])
        den += sum(year) / len(year) * 28
    assert num > 0 and rate == pytest.approx(num / den)
    # Point in time: days after the cutoff change nothing.
    longer = _frame(days + 60, {"asleep": asleep + [9.0] * 60, "busy": busy + [3.0] * 60})
    assert revival_rate(longer, cutoff) == pytest.approx(rate)
    # Nobody ever idle: no revival.
    assert revival_rate(_frame(days, {"busy": busy}), cutoff) == 0.0


def test_forecast_is_the_rate_times_the_series_mean_day_flat_over_the_horizon() -> None:
    days = 500
    cutoff = DAY0 + timedelta(days=days - 1)
    frame = _frame(days, {"asleep": [2.0] * 300 + [0.0] * 100 + [1.0] * 100, "other": [0.0, 4.0]})
    rate = revival_rate(frame, cutoff)
    fc = revival_forecast(frame, [cutoff], 14)
    assert fc.columns == ["unique_id", "cutoff", "ds", REVIVAL]
    assert fc.height == 28 and fc["ds"].min() == cutoff + timedelta(days=1)
    other = fc.filter(pl.col("unique_id") == "other")[REVIVAL]
    assert other.n_unique() == 1 and other[0] == pytest.approx(rate * 2.0)


def test_inactive_items_default_to_revival_on_days_and_keep_zero_elsewhere() -> None:
    assert candidates_for("inactive")[0] == REVIVAL
    assert "zero" not in candidates_for("inactive")
    assert candidates_for("inactive", freq="weekly")[0] == "zero"
    assert candidates_for("inactive", pooled=False)[0] == "zero"
