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
        ("suppliers", "order_days", "Mondy", r"suppliers row 1: order_days='Mondy' must list"),
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


YAML = """\
suppliers:
  - supplier_id: A
    lead_time_mean: 3
    order_days: Mon,Thu
  - supplier_id: B
    lead_time_mean: 7
    lead_time_std: 1.5
    order_days: Tue
    min_order_value: 250
    min_order_action: fill
items:
  - sku_id: x
    supplier_id: A
    unit_cost: 1.20
    pack_size: 6
  - sku_id: y
    supplier_id: B
    unit_cost: 2.50
    shelf_life_days: 10
overrides:
  - store_id: S1
    sku_id: x
    service_level: 0.99
    max_capacity: 48
"""


def test_yaml_rules_load_with_defaults(tmp_path) -> None:
    from replenishment.rules import load_rules

    path = tmp_path / "rules.yaml"
    path.write_text(YAML)
    rules = load_rules([path])
    assert rules.summary() == {"suppliers": 2, "items": 2, "overrides": 1}
    assert rules.suppliers["min_order_action"].to_list() == ["hold", "fill"]
    assert rules.overrides["service_level"][0] == 0.99


def test_yaml_error_points_at_file_and_line(tmp_path) -> None:
    from replenishment.rules import load_rules

    path = tmp_path / "rules.yaml"
    path.write_text(YAML.replace("    pack_size: 6", "    pack_size: six"))
    with pytest.raises(RulesError, match=r"rules.yaml:15: pack_size='six' is not a valid"):
        load_rules([path])
    path.write_text(YAML.replace("service_level: 0.99", "service_level: 1.2"))
    with pytest.raises(RulesError, match=r"rules.yaml:23: service_level=1.2 must lie"):
        load_rules([path])


def test_csv_error_points_at_file_and_line(tmp_path) -> None:
    from replenishment.rules import load_rules

    (tmp_path / "suppliers.csv").write_text(
        "supplier_id,lead_time_mean,order_days\nA,3,Mon\nB,-2,Tue\n"
    )
    (tmp_path / "items.csv").write_text("sku_id,supplier_id,unit_cost\nx,A,1.0\n")
    with pytest.raises(RulesError, match=r"suppliers.csv:3: lead_time_mean=-2.0 must be"):
        load_rules([tmp_path])


def test_rules_round_trip_through_the_database_and_bad_files_change_nothing(tmp_path) -> None:
    from replen.db import connect
    from replenishment.rules import load_rules
    from replenishment.rules_store import RulesStore

    path = tmp_path / "rules.yaml"
    path.write_text(YAML)
    store = RulesStore(connect(f"sqlite:///{tmp_path / 'db'}"))
    assert store.load() is None
    store.save(load_rules([path]), str(path))
    loaded = store.load()
    assert loaded is not None and loaded.summary() == {"suppliers": 2, "items": 2, "overrides": 1}
    assert loaded.items.sort("sku_id")["shelf_life_days"].to_list() == [None, 10.0]
    path.write_text(YAML.replace("unit_cost: 2.50", "unit_cost: -1"))
    with pytest.raises(RulesError):
        store.save(load_rules([path]), str(path))
    assert store.load().summary() == loaded.summary()


def test_order_days_are_weekday_names_in_any_case_short_or_long() -> None:
    sup = SUPPLIERS.with_columns(pl.Series("order_days", ["mon, WED,friday", "Tue"]))
    rules = Rules.from_frames(sup, ITEMS)
    assert rules.suppliers["order_days"].to_list() == ["Mon,Wed,Fri", "Tue"]
    assert rules.suppliers["review_period_days"].to_list()[0] == 3.0
