"""Reference files: every line checked by named rules, all or nothing, merged by key."""

from datetime import date

import polars as pl
import pytest

from features.reference import ReferenceError, ReferenceStore, validate
from kernel.errors import InvalidInput


def _text(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows).select(pl.all().cast(pl.String))


def test_a_good_calendar_is_typed_and_chain_wide_rows_get_the_all_stores_key() -> None:
    rows = validate(
        "calendar",
        _text(
            [
                {"date": "2026-12-24", "store_id": "", "event": "Christmas Eve", "payday": ""},
                {"date": "2026-12-15", "store_id": "S1", "event": "", "payday": "true"},
            ]
        ),
    )
    assert rows.select("date", "store_id", "event", "payday").rows() == [
        (date(2026, 12, 24), "*", "Christmas Eve", 0.0),
        (date(2026, 12, 15), "S1", None, 1.0),
    ]


def test_every_broken_rule_is_named_with_its_file_line_and_nothing_is_returned() -> None:
    raw = _text(
        [
            {"sku_id": "A", "valid_from": "2026-01-01", "price": "2.50"},  # line 2: fine
            {"sku_id": "", "valid_from": "2026-13-01", "price": "cheap"},  # line 3
            {"sku_id": "B", "valid_from": "2026-01-01", "price": "-1"},  # line 4
        ]
    )
    with pytest.raises(ReferenceError) as caught:
        validate("prices", raw, "prices.csv")
    text = str(caught.value)
    assert "prices.csv:3: sku_id=None is required (sku_id.required)" in text
    assert (
        "prices.csv:3: valid_from='2026-13-01' must be a date YYYY-MM-DD (valid_from.date)" in text
    )
    assert "prices.csv:3: price='cheap' must be a number (price.number)" in text
    assert "prices.csv:4: price='-1' must be >= 0 (price.nonnegative)" in text
    err = caught.value
    assert (err.line, err.field, err.rule, err.exit_code) == (3, "sku_id", "sku_id.required", 2)


def test_promotions_must_end_after_they_start_and_discounts_are_fractions() -> None:
    raw = _text(
        [
            {
                "promo_id": "P1",
                "sku_id": "A",
                "start_date": "2026-05-10",
                "end_date": "2026-05-01",
                "discount": "20",
            }
        ]
    )
    with pytest.raises(ReferenceError, match=r"end_date\.order.*\n.*discount\.fraction|discount"):
        validate("promotions", raw)


def test_a_key_twice_in_one_file_is_refused_with_its_line() -> None:
    raw = _text([{"sku_id": "A", "department": "D1"}, {"sku_id": "A", "department": "D2"}])
    with pytest.raises(ReferenceError, match=r"input:3: sku_id=A appears more than once") as e:
        validate("attributes", raw)
    assert e.value.rule == "sku_id.unique"


def test_missing_columns_name_what_the_file_needs() -> None:
    with pytest.raises(InvalidInput, match=r"p.csv:1: missing column 'price'") as e:
        validate("prices", _text([{"sku_id": "A", "valid_from": "2026-01-01"}]), "p.csv")
    assert (e.value.field, e.value.rule, e.value.line) == ("price", "column.required", 1)


def test_an_unknown_column_names_the_closest_known_one() -> None:
    rows = [{"date": "2026-01-01", "evnt": "Easter"}]
    with pytest.raises(
        InvalidInput, match=r"c.csv:1: unknown column 'evnt' \(did you mean 'event'"
    ):
        validate("calendar", _text(rows), "c.csv")


def test_resent_rows_replace_by_key_and_a_bad_file_changes_nothing(tmp_path) -> None:
    store = ReferenceStore(tmp_path)
    first = validate("attributes", _text([{"sku_id": "A", "department": "D1"}, {"sku_id": "B"}]))
    assert store.upsert("attributes", first).to_dict() == {
        "kind": "attributes",
        "received": 2,
        "added": 2,
        "replaced": 0,
        "unchanged": 0,
        "rows": 2,
    }
    second = validate(
        "attributes",
        _text([{"sku_id": "A", "department": "D9"}, {"sku_id": "B"}, {"sku_id": "C"}]),
    )
    report = store.upsert("attributes", second)
    assert (report.added, report.replaced, report.unchanged, report.rows) == (1, 1, 1, 3)
    before = store.path("attributes").read_bytes()
    with pytest.raises(ReferenceError):
        store.upsert("attributes", validate("attributes", _text([{"sku_id": ""}])))
    assert store.path("attributes").read_bytes() == before
    table = store.load("attributes")
    assert table is not None and dict(table.select("sku_id", "department").iter_rows())["A"] == "D9"
