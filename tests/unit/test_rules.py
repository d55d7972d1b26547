from datetime import date

import polars as pl
import pytest

from replenishment.rules import Rules, RulesError, next_order_date

SUPPLIERS = pl.DataFrame(
    {
        "supplier_id": ["A", "B"],
        "lead_time_mean": [3.0, 7.0],
        "lead_time_std": [1.0, 0.0],
        "order_days": ["Mon,Thu", "Tue"],
    }
)
ITEMS = pl.DataFrame(
    {"sku_id": ["x", "y"], "supplier_id": ["A", "B"], "unit_cost": [1.0, 2.5], "pack_size": [6, 1]}
)


def test_valid_rules_get_defaults_and_review_periods() -> None:
    rules = Rules.from_frames(SUPPLIERS, ITEMS)
    assert rules.suppliers["review_period_days"].to_list() == [4.0, 7.0]
    assert rules.items["moq_units"].to_list() == [0, 0]


@pytest.mark.parametrize(
    ("table", "column", "value", "message"),
    [
        ("suppliers", "lead_time_mean", -1.0, r"suppliers row 1: lead_time_mean=-1.0 must be"),
        ("suppliers", "order_days", "Monday", r"suppliers row 1: order_days='Monday' must list"),
        ("items", "pack_size", 0, r"items row 1: pack_size=0 must be an integer >= 1"),
        ("items", "supplier_id", "Z", r"items row 1: supplier_id='Z' must name a supplier"),
        ("items", "unit_cost", "cheap", r"items row 1: unit_cost='cheap' is not a valid"),
    ],
)
def test_bad_value_names_table_row_field_and_rule(table, column, value, message) -> None:
    sup, itm = SUPPLIERS, ITEMS
    frame = sup if table == "suppliers" else itm
    dtype = pl.String if isinstance(value, str) else frame.schema[column]
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit(value, dtype=dtype))
        .otherwise(pl.col(column).cast(dtype))
        .alias(column)
    )
    with pytest.raises(RulesError, match=message):
        if table == "suppliers":
            Rules.from_frames(frame, itm)
        else:
            Rules.from_frames(sup, frame)


def test_duplicate_sku_is_refused() -> None:
    with pytest.raises(RulesError, match="sku_id='x' appears twice"):
        Rules.from_frames(SUPPLIERS, pl.concat([ITEMS, ITEMS.head(1)]))


def test_next_order_date_respects_order_days() -> None:
    # 2024-01-02 is a Tuesday.
    assert next_order_date("Mon,Thu", date(2024, 1, 2)) == date(2024, 1, 4)
    assert next_order_date("Tue", date(2024, 1, 2)) == date(2024, 1, 2)
