"""Comparing policies on replays: static min/max levels and the stock needed at a fill rate."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from replenishment.tradeoff import at_fill_rate, min_max

SPANS = pl.DataFrame({"store_id": ["S1"], "sku_id": ["x"], "protection_days": [9.0]})


def _point(fill: float, value: float, name: str = "") -> dict:
    return {"fill_rate": fill, "avg_on_hand_value": value, "name": name}


def test_stock_at_a_fill_rate_interpolates_between_the_settings_around_it() -> None:
    points = [_point(0.90, 100.0), _point(0.94, 140.0), _point(0.98, 220.0)]
    at = at_fill_rate(points, 0.95)
    assert at is not None and at["avg_on_hand_value"] == pytest.approx(160.0)
    assert [p["fill_rate"] for p in at["interpolated_between"]] == [0.94, 0.98]


def test_a_dominated_setting_is_never_on_the_frontier() -> None:
    # The 150 setting serves worse than the 140 one: the frontier skips it.
    points = [_point(0.94, 140.0), _point(0.93, 150.0, "wasteful"), _point(0.98, 220.0)]
    at = at_fill_rate(points, 0.95)
    assert at is not None and all(p["name"] != "wasteful" for p in at["interpolated_between"])
    assert at["avg_on_hand_value"] == pytest.approx(160.0)


def test_a_setting_under_the_chord_of_two_others_is_skipped_as_a_mix_of_them_does_better() -> None:
    points = [_point(0.90, 100.0), _point(0.91, 150.0, "weak"), _point(0.98, 200.0)]
    at = at_fill_rate(points, 0.95)
    assert at is not None and at["avg_on_hand_value"] == pytest.approx(162.5)
    assert all(p["name"] != "weak" for p in at["interpolated_between"])


def test_an_unreached_fill_rate_gives_none_and_the_cheapest_reaching_one_wins() -> None:
    assert at_fill_rate([_point(0.90, 100.0)], 0.95) is None
    at = at_fill_rate([_point(0.97, 300.0), _point(0.96, 200.0)], 0.95)
    assert at is not None and at["avg_on_hand_value"] == 200.0


def test_min_max_orders_up_to_max_at_or_below_min_with_the_latest_revision() -> None:
    levels = pl.DataFrame(
        {
            "store_id": ["S1", "S1"],
            "sku_id": ["x", "x"],
            "min_units": [5.0, 8.0],
            "max_units": [20.0, 30.0],
            "daily_mean": [1.0, 2.0],
            "from_date": [date(2024, 1, 1), date(2024, 2, 1)],
        }
    )
    fn = min_max(levels)
    jan = fn(date(2024, 1, 15), SPANS).row(0, named=True)
    feb = fn(date(2024, 2, 5), SPANS).row(0, named=True)
    assert (jan["policy"], jan["reorder_point"], jan["demand_quantile"]) == ("minmax", 5.0, 20.0)
    assert (feb["reorder_point"], feb["demand_quantile"], feb["demand_mean"]) == (8.0, 30.0, 18.0)


def test_a_line_without_min_max_levels_never_orders() -> None:
    fn = min_max(
        pl.DataFrame(
            {"store_id": ["S1"], "sku_id": ["y"], "min_units": [5.0], "max_units": [9.0]},
        ).with_columns(pl.lit(1.0).alias("daily_mean"))
    )
    row = fn(date(2024, 1, 1), SPANS).row(0, named=True)
    assert row["demand_quantile"] == 0.0 and row["reorder_point"] < 0
