"""Feeds besides POS are checked row by row like POS lines: named rules, file lines, raw rows."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from features.feeds import ACKS, RECEIPTS, STOCK, STORES, validate_feed
from kernel.errors import InvalidInput

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _stock(**overrides: list[str]) -> pl.DataFrame:
    data = {
        "store_id": ["S1", "S1", "S2"],
        "sku_id": ["a", "b", "a"],
        "as_of": ["2024-05-31T22:00:00+02:00"] * 3,
        "on_hand": ["4", "0", "7.5"],
    }
    return pl.DataFrame(data | overrides)


def test_valid_stock_rows_are_typed_with_defaults_for_optional_columns() -> None:
    result = validate_feed(_stock(), STOCK, first_line=2, now=NOW)
    assert result.rejected.is_empty() and result.received == 3
    row = result.accepted.row(0, named=True)
    assert row["as_of"] == datetime(2024, 5, 31, 20, tzinfo=UTC)  # stored in UTC
    assert (row["on_order"], row["in_transit"], row["backorders"]) == (0.0, 0.0, 0.0)
    assert result.accepted["_line"].to_list() == [2, 3, 4]  # 1-based file lines


def test_each_bad_row_is_rejected_alone_by_its_first_rule_with_the_raw_row() -> None:
    raw = _stock(
        on_hand=["-1", "x", "3"],
        as_of=["2024-05-31T22:00:00+02:00", "2024-05-31T22:00:00Z", "2024-05-31 22:00"],
    )
    result = validate_feed(raw, STOCK, first_line=2, now=NOW)
    assert result.accepted.is_empty()
    got = result.rejected.select("line", "rule", "field", "value").rows()
    assert got == [
        (2, "on_hand.nonnegative", "on_hand", "-1"),
        (3, "on_hand.number", "on_hand", "x"),
        (4, "as_of.timezone", "as_of", "2024-05-31 22:00"),
    ]
    assert '"on_hand":"x"' in result.rejected["payload"][1]


def test_positions_from_the_future_are_refused() -> None:
    raw = _stock(as_of=["2024-06-02T00:00:00Z"] * 3)
    assert set(validate_feed(raw, STOCK, now=NOW).rejected["rule"]) == {"as_of.future"}


def test_an_unknown_column_is_an_error_naming_the_closest_known_one() -> None:
    with pytest.raises(InvalidInput, match=r"unknown column 'onhand'.*did you mean 'on_hand'"):
        validate_feed(_stock().rename({"on_hand": "onhand"}), STOCK, source="stock.csv")
    with pytest.raises(InvalidInput, match=r"missing column .as_of."):
        validate_feed(_stock().drop("as_of"), STOCK)


def test_a_repeated_row_counts_once_and_a_contradicting_one_is_rejected() -> None:
    raw = pl.concat([_stock(), _stock().head(1), _stock(on_hand=["9", "0", "7.5"]).head(1)])
    result = validate_feed(raw, STOCK, first_line=2, now=NOW)
    assert result.duplicates == 1
    assert result.rejected.select("line", "rule").rows() == [(6, "key.conflict")]
    assert "repeats line 2" in result.rejected["message"][0]
    assert result.received == result.accepted.height + result.duplicates + result.rejected.height


def test_receipts_and_acks_name_a_po_by_replen_id_or_erp_number() -> None:
    raw = pl.DataFrame(
        {
            "receipt_id": ["R1", "R2", "R3"],
            "po_id": ["12", None, "1.5"],
            "erp_po_number": [None, "P00012", None],
            "sku_id": ["a", "a", "a"],
            "quantity": ["4", "4", "4"],
            "received_at": ["2024-05-30T10:00:00Z"] * 3,
        }
    )
    result = validate_feed(raw, RECEIPTS, now=NOW)
    assert result.accepted["receipt_id"].to_list() == ["R1", "R2"]
    assert result.rejected["rule"].to_list() == ["po_id.integer"]
    ack = validate_feed(pl.DataFrame({"sku_id": ["a"]}), ACKS, now=NOW)
    assert ack.rejected["rule"].to_list() == ["po_id.required"]


def test_a_store_time_zone_must_be_an_iana_name() -> None:
    raw = pl.DataFrame(
        {"store_id": ["S1", "S2"], "name": ["A", "B"], "timezone": ["Europe/Paris", "CEST"]}
    )
    result = validate_feed(raw, STORES)
    assert result.rejected.select("line", "rule").rows() == [(2, "timezone.iana")]
