from datetime import UTC, date, datetime

import polars as pl

from features.sales import daily_sales, velocity, velocity_history


def _events(rows: list[tuple[str, str, str, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_id": [r[0] for r in rows],
            "sku_id": [r[1] for r in rows],
            "sold_at": [datetime.fromisoformat(r[2]).astimezone(UTC) for r in rows],
            "quantity": [r[3] for r in rows],
            "unit_price": [r[4] for r in rows],
        }
    )


EVENTS = _events(
    [
        ("S1", "A", "2024-01-01T10:00:00+00:00", 2, 1.0),
        ("S1", "A", "2024-01-01T11:00:00+00:00", 1, 4.0),
        ("S1", "A", "2024-01-01T12:00:00+00:00", -1, 1.0),
        ("S1", "A", "2024-01-04T09:00:00+00:00", 5, 2.0),
    ]
)


def test_units_returns_revenue_and_realised_price() -> None:
    d = daily_sales(EVENTS).row(0, named=True)
    assert (d["units"], d["returns"], d["revenue"]) == (3.0, 1.0, 5.0)
    assert d["price"] == 2.0  # (2×1 + 1×4) / 3 units sold


def test_calendar_days_are_zero_filled_to_the_end() -> None:
    d = daily_sales(EVENTS, end=date(2024, 1, 6))
    assert d["date"].to_list() == [date(2024, 1, i) for i in range(1, 7)]
    assert d["units"].to_list() == [3.0, 0.0, 0.0, 5.0, 0.0, 0.0]
    assert d["price"][1] is None


def test_days_are_cut_in_the_business_time_zone() -> None:
    late = _events([("S1", "A", "2024-01-01T23:30:00+00:00", 1, 1.0)])
    assert daily_sales(late, tz="Europe/Berlin")["date"].to_list() == [date(2024, 1, 2)]


def test_stockout_comes_from_the_latest_snapshot() -> None:
    snaps = pl.DataFrame(
        {
            "store_id": ["S1"] * 2,
            "sku_id": ["A"] * 2,
            "as_of": [datetime(2024, 1, 2, 7, tzinfo=UTC), datetime(2024, 1, 4, 7, tzinfo=UTC)],
            "on_hand": [0, 12],
        }
    )
    d = daily_sales(EVENTS, snaps)
    assert d["stockout"].to_list() == [False, True, True, False]
    assert d["on_hand"].to_list() == [None, 0.0, 0.0, 12.0]


def test_velocity_sums_windows_and_counts_days_since_sale() -> None:
    d = daily_sales(EVENTS, end=date(2024, 1, 6))
    v = velocity(d).row(0, named=True)
    assert (v["units_1d"], v["units_7d"], v["units_28d"]) == (0.0, 8.0, 8.0)
    assert v["days_since_last_sale"] == 2


def test_velocity_history_agrees_with_velocity_on_every_day(daily) -> None:
    hist = velocity_history(daily)
    for day in (daily["date"].min(), daily["date"].max()):
        one = velocity(daily, day).sort("store_id", "sku_id")
        same = hist.filter(pl.col("as_of") == day).sort("store_id", "sku_id")
        assert one.select(same.columns).equals(same)
