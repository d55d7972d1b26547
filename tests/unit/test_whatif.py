"""Wiring of the what-if: the demand replayed, the stock it starts from, forecasts that
wake up series which were asleep at training."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from jobs.simulation import _revive, change, initial_stock, replayed_demand, what_if
from kernel.errors import InvalidInput
from replenishment.rules import Rules

DAY0 = date(2024, 3, 1)
RULES = Rules.from_frames(
    pl.DataFrame({"supplier_id": ["A"], "lead_time_mean": [3.0], "order_days": ["Mon"]}),
    pl.DataFrame({"sku_id": ["x"], "supplier_id": ["A"], "unit_cost": [1.0]}),
)


def _history(units: list[float], **extra: list) -> pl.DataFrame:
    n = len(units)
    return pl.DataFrame(
        {
            "store_id": ["S1"] * n,
            "sku_id": ["x"] * n,
            "date": [DAY0 + timedelta(days=t) for t in range(n)],
            "units": units,
            **extra,
        }
    )


def test_a_stockout_day_replays_the_recent_level_not_the_censored_sales() -> None:
    history = _history([4.0] * 10 + [1.0], stockout=[False] * 10 + [True])
    replayed = replayed_demand(history, DAY0 + timedelta(days=9), 2)
    assert replayed["units"].to_list() == [4.0, 4.0]  # day 10 sold 1 but shelves were empty


def test_initial_stock_comes_from_history_when_it_has_on_hand() -> None:
    history = _history([2.0] * 30, on_hand=[float(t) for t in range(30)])
    stock, source = initial_stock(history, RULES, DAY0 + timedelta(days=20))
    assert source == "history" and stock["on_hand"].to_list() == [19.0]


def test_initial_stock_is_estimated_from_recent_sales_and_the_protection_period() -> None:
    stock, source = initial_stock(_history([2.0] * 40), RULES, DAY0 + timedelta(days=35))
    assert source == "estimated" and stock["on_hand"].to_list() == [20.0]  # 2/day × (3 + 7)


def test_a_series_asleep_at_training_that_sells_again_gets_a_real_model() -> None:
    champions = pl.DataFrame(
        {"store_id": ["S1", "S1"], "sku_id": ["x", "y"], "model": ["zero", "zero"]}
    )
    known = pl.DataFrame(
        {
            "store_id": ["S1", "S1"],
            "sku_id": ["x", "y"],
            "date": [DAY0, DAY0 - timedelta(days=90)],
            "units": [3.0, 5.0],
        }
    )
    kept = _revive(champions, known, DAY0 + timedelta(days=1))
    assert kept["sku_id"].to_list() == ["y"]  # x sold yesterday: forecast it afresh


def test_change_reports_fill_in_points_and_the_rest_relative() -> None:
    base = {"fill_rate": 0.9, "avg_on_hand_value": 100.0, "orders": 10, "units_ordered": 50.0}
    cand = {"fill_rate": 0.95, "avg_on_hand_value": 120.0, "orders": 5, "units_ordered": 50.0}
    c = change(base | {"stockout_days": 0, "lost": 4.0}, cand | {"stockout_days": 2, "lost": 2})
    assert c["fill_rate"] == pytest.approx(0.05) and c["avg_on_hand_value"] == 0.2
    assert c["orders"] == -0.5 and c["stockout_days"] is None and c["lost"] == -0.5


def test_what_if_refuses_too_short_a_history_and_unknown_frequencies() -> None:
    with pytest.raises(InvalidInput, match="at least 56"):
        what_if(_history([1.0] * 60), RULES, days=28)
    with pytest.raises(InvalidInput, match="freq 'hourly' unknown"):
        what_if(_history([1.0] * 60), RULES, days=28, freq="hourly")
