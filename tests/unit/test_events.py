from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from features.events import same_body, validate_events

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


def _line(**over: object) -> dict:
    base = {
        "event_id": "e1",
        "store_id": "S1",
        "sku_id": "A",
        "sold_at": "2024-06-01T10:00:00+02:00",
        "quantity": "2",
        "unit_price": "1.50",
    }
    return {**base, **over}


def _rules(rows: list[dict]) -> list[str | None]:
    res = validate_events(pl.DataFrame(rows), now=NOW)
    by_id = dict(zip(res.rejected["event_id"], res.rejected["rule"], strict=True))
    return [by_id.get(r["event_id"]) for r in rows]


def test_valid_line_is_accepted_and_stored_in_utc() -> None:
    res = validate_events(pl.DataFrame([_line()]), now=NOW)
    assert res.rejected.is_empty()
    assert res.accepted["sold_at"][0] == datetime(2024, 6, 1, 8, tzinfo=UTC)
    assert res.accepted["quantity"][0] == 2.0


@pytest.mark.parametrize(
    ("override", "rule"),
    [
        ({"quantity": "0"}, "quantity.nonzero"),
        ({"quantity": "abc"}, "quantity.number"),
        ({"quantity": "nan"}, "quantity.finite"),
        ({"quantity": "100000"}, "quantity.bound"),
        ({"unit_price": "-0.01"}, "unit_price.nonnegative"),
        ({"sold_at": "2024-06-01 10:00:00"}, "sold_at.timezone"),
        ({"sold_at": "yesterday"}, "sold_at.timestamp"),
        ({"sold_at": "2024-06-02T10:00:00Z"}, "sold_at.future"),
        ({"store_id": " "}, "store_id.required"),
        ({"currency": "euro"}, "currency.iso4217"),
    ],
)
def test_each_broken_rule_is_named(override: dict, rule: str) -> None:
    assert _rules([_line(**override)]) == [rule]


def test_rejects_keep_the_raw_value_message_and_payload() -> None:
    res = validate_events(pl.DataFrame([_line(quantity="0")]), now=NOW)
    row = res.rejected.row(0, named=True)
    assert row["field"] == "quantity"
    assert row["value"] == "0"
    assert "must not be 0" in row["message"]
    assert '"quantity":"0"' in row["payload"]


def test_negative_quantity_is_a_valid_return() -> None:
    assert _rules([_line(quantity="-1")]) == [None]


def test_small_clock_skew_is_tolerated() -> None:
    soon = (NOW + timedelta(minutes=2)).isoformat()
    assert _rules([_line(sold_at=soon)]) == [None]


def test_missing_required_column_names_it() -> None:
    with pytest.raises(ValueError, match=r"\['unit_price'\]"):
        validate_events(pl.DataFrame([_line()]).drop("unit_price"), now=NOW)


def test_every_line_is_either_accepted_or_rejected(chain) -> None:
    raw = chain.pos.head(500).with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0)
        .then(0)
        .otherwise(pl.col("quantity"))
        .alias("quantity")
    )
    res = validate_events(raw)
    assert res.accepted.height + res.rejected.height == raw.height
    assert res.rejected.height == len(range(0, 500, 7))


def test_same_body_ignores_the_id_but_not_the_body() -> None:
    res = validate_events(
        pl.DataFrame([_line(), _line(event_id="e2"), _line(event_id="e3", quantity="3")]),
        now=NOW,
    ).accepted
    pairs = res.join(res, how="cross", suffix="_other").filter(
        pl.col("event_id") < pl.col("event_id_other")
    )
    got = dict(
        zip(
            pairs["event_id"] + pairs["event_id_other"],
            pairs.select(same_body()).to_series(),
            strict=True,
        )
    )
    assert got == {"e1e2": True, "e1e3": False, "e2e3": False}


def test_currency_must_be_a_real_iso_code() -> None:
    assert _rules([_line(currency="GBP"), _line(event_id="e2", currency="ABC")]) == [
        None,
        "currency.iso4217",
    ]


def test_a_batch_without_lines_validates_to_nothing() -> None:
    from features.events import EVENT_SCHEMA

    empty = pl.DataFrame(schema={c: pl.String for c in EVENT_SCHEMA})
    result = validate_events(empty)
    assert result.accepted.height == result.rejected.height == 0


def test_implausible_lines_are_rejected_by_name() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 1, tzinfo=UTC)
    raw = pl.DataFrame(
        {
            "event_id": ["ok", "a\u2028b", "y1", "old", "cheap", "out"],
            "store_id": ["S1", "S1", "S1", "S1", "S1", "S2"],
            "sku_id": ["A"] * 6,
            "sold_at": ["2026-11-30T10:00:00+00:00"] * 2
            + ["0001-01-01T00:00:00+00:00", "2020-01-01T00:00:00+00:00"]
            + ["2026-11-30T10:00:00+00:00"] * 2,
            "quantity": ["1"] * 6,
            "unit_price": ["1", "1", "1", "1", "1e9", "1"],
        }
    )
    from datetime import timedelta

    result = validate_events(raw, now=now, max_age=timedelta(days=400), allowed_stores={"S1"})
    assert result.accepted["event_id"].to_list() == ["ok"]
    assert result.rejected.select("event_id", "rule").rows() == [
        ("a\u2028b", "event_id.format"),
        ("y1", "sold_at.past"),
        ("old", "sold_at.past"),
        ("cheap", "unit_price.bound"),
        ("out", "store_id.scope"),
    ]
