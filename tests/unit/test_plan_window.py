"""The demand a plan covers starts after what the stock position already reflects: no day of
sales is counted both in the position and in the demand to cover."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from jobs.replenish import _from_position

LAST = date(2024, 3, 10)  # last day of sales history


def _window(as_of: datetime, plan: date) -> tuple[date, float]:
    forecast = pl.DataFrame(
        {
            "store_id": "S1",
            "sku_id": "a",
            "date": [LAST + timedelta(days=i) for i in range(1, 30)],
            "mean": 1.0,
        }
    )
    spans = pl.DataFrame({"store_id": ["S1"], "sku_id": ["a"], "protection_days": [7.0]})
    positions = pl.DataFrame(
        {"store_id": ["S1"], "sku_id": ["a"], "as_of": [as_of]},
        schema_overrides={"as_of": pl.Datetime("us", "UTC")},
    )
    window, shifted = _from_position(forecast, spans, positions, plan, LAST)
    return window["date"].min(), shifted["protection_days"][0]


def test_history_to_yesterday_and_last_nights_position_cover_from_the_plan_date() -> None:
    plan = LAST + timedelta(days=1)
    assert _window(datetime(2024, 3, 10, 22, tzinfo=UTC), plan) == (plan, 7.0)


def test_a_position_newer_than_history_drops_the_days_it_already_reflects() -> None:
    plan = LAST + timedelta(days=6)
    evening = datetime.combine(LAST + timedelta(days=5), datetime.min.time(), UTC)
    assert _window(evening + timedelta(hours=22), plan) == (plan, 7.0)
    # Taken in the morning: that day's sales are still to come, so that day is covered.
    assert _window(evening + timedelta(hours=9), plan) == (plan - timedelta(days=1), 8.0)


def test_a_position_older_than_history_covers_from_the_day_after_history() -> None:
    plan = LAST + timedelta(days=3)
    start, protection = _window(datetime(2024, 3, 1, 22, tzinfo=UTC), plan)
    assert (start, protection) == (LAST + timedelta(days=1), 7.0 + 2)
