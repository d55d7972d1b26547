"""Daily model inputs: list prices over realised ones, promotions, calendars per store."""

from datetime import date, timedelta

import polars as pl
import pytest

from features.inputs import calendar_days, daily_inputs, promo_plan

D0 = date(2026, 3, 2)


def _daily(units: list[float], price: list[float | None], store: str = "S1") -> pl.DataFrame:
    n = len(units)
    return pl.DataFrame(
        {
            "store_id": store,
            "sku_id": "A",
            "date": [D0 + timedelta(days=i) for i in range(n)],
            "units": units,
            "price": price,
            "stockout": [False] * n,
            "promo_units": [0.0] * n,
        },
        schema_overrides={"price": pl.Float64},
    )


def test_realised_price_carries_over_days_without_sales_and_list_price_wins() -> None:
    daily = _daily([2.0, 0.0, 0.0, 1.0], [3.0, None, None, 2.0])
    alone = daily_inputs(daily)
    assert alone["price"].to_list() == [3.0, 3.0, 3.0, 2.0]
    assert alone["price_rel"].to_list()[-1] == pytest.approx(2.0 / ((3 * 3 + 2) / 4))
    listed = pl.DataFrame(
        {
            "sku_id": ["A", "A"],
            "store_id": ["*", "S1"],
            "valid_from": [D0, D0 + timedelta(days=2)],
            "price": [5.0, 4.0],
        }
    )
    with_list = daily_inputs(daily, prices=listed)
    assert with_list["price"].to_list() == [5.0, 5.0, 4.0, 4.0]  # the store's own row wins


def test_promo_is_the_share_of_units_on_promotion_or_a_planned_day() -> None:
    daily = _daily([4.0, 2.0, 0.0], [1.0, 1.0, None]).with_columns(
        pl.Series("promo_units", [1.0, 0.0, 0.0])
    )
    plan = pl.DataFrame(
        {
            "promo_id": ["P1"],
            "store_id": ["*"],
            "sku_id": ["A"],
            "start_date": [D0 + timedelta(days=2)],
            "end_date": [D0 + timedelta(days=9)],
            "discount": [0.2],
        }
    )
    assert daily_inputs(daily, promotions=plan)["promo"].to_list() == [0.25, 0.0, 1.0]
    ahead = promo_plan(plan, daily.select("store_id", "sku_id").unique(), D0 + timedelta(days=8))
    assert ahead.row(0, named=True)["promo_dates"] == ["2026-03-10", "2026-03-11"]


def test_a_store_calendar_row_replaces_the_chain_row_of_that_day() -> None:
    calendar = pl.DataFrame(
        {
            "date": [D0, D0, D0 + timedelta(days=1)],
            "store_id": ["*", "S2", "*"],
            "event": ["Fair", None, None],
            "event_type": ["Local", None, None],
            "payday": [0.0, 1.0, 1.0],
        }
    )
    days = calendar_days(calendar, ["S1", "S2"])
    got = {
        (r["store_id"], r["date"]): (r["event"], r["payday"]) for r in days.iter_rows(named=True)
    }
    assert got == {
        ("S1", D0): (1.0, 0.0),
        ("S2", D0): (0.0, 1.0),
        ("S1", D0 + timedelta(days=1)): (0.0, 1.0),
        ("S2", D0 + timedelta(days=1)): (0.0, 1.0),
    }
    inputs = daily_inputs(_daily([1.0, 1.0], [1.0, 1.0], store="S1"), calendar=calendar)
    assert inputs.select("event", "event_type", "payday").rows() == [
        (1.0, "Local", 0.0),
        (0.0, None, 1.0),
    ]


def test_item_attributes_join_every_day_and_unknown_items_stay_null() -> None:
    attributes = pl.DataFrame({"sku_id": ["B"], "department": ["D1"], "category": ["C"]})
    inputs = daily_inputs(_daily([1.0], [1.0]), attributes=attributes)
    assert inputs.select("department", "category").row(0) == (None, None)


def test_item_attributes_come_from_the_file_first_then_the_erp_item_master(rt) -> None:
    from jobs.erp import ingest_feed
    from jobs.model_inputs import ingest_reference, item_attributes

    assert item_attributes(rt) is None  # neither loaded yet
    items = pl.DataFrame(
        {
            "sku_id": ["A", "B", "C"],
            "name": ["Apple", "Bread", "Cheese"],
            "department": ["Fresh", "Bakery", None],
            "category": ["Fruit", None, None],
        }
    )
    ingest_feed(rt, "items", items, source="items.csv", first_line=2)
    from_master = item_attributes(rt)
    assert from_master is not None
    assert from_master.sort("sku_id").rows() == [("A", "Fresh", "Fruit"), ("B", "Bakery", None)]

    attributes = pl.DataFrame({"sku_id": ["A"], "department": ["Produce"], "category": ["Fruit"]})
    ingest_reference(rt, "attributes", attributes, "attributes.csv")
    both = item_attributes(rt)
    assert both is not None
    assert both.sort("sku_id").rows() == [("A", "Produce", "Fruit"), ("B", "Bakery", None)]
