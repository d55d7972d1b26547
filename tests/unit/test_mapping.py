import polars as pl
import pytest

from features.events import validate_events
from features.mapping import BUILTIN, apply_mapping, parse_mapping

UCI = pl.DataFrame(
    {
        "InvoiceNo": ["536365", "536365", "536365", "C536379"],
        "StockCode": ["85123A", "71053", "85123A", "D"],
        "Description": ["HEART", "LANTERN", "HEART", "Discount"],
        "Quantity": ["6", "6", "2", "-1"],
        "InvoiceDate": [
            "2010-12-01 08:26:00",
            "2010-12-01 08:26:00",
            "2010-12-01 08:26:00",
            "2011-07-01 09:41:00",
        ],
        "UnitPrice": ["2.55", "3.39", "2.55", "27.50"],
        "CustomerID": ["17850", "17850", "17850", "14527"],
        "Country": ["United Kingdom"] * 3 + ["France"],
    }
)


def test_uci_lines_become_contract_events() -> None:
    events = validate_events(apply_mapping(UCI, BUILTIN["uci-online-retail"])).accepted
    assert events["event_id"].to_list() == [
        "536365:85123A:0",
        "536365:71053:0",
        "536365:85123A:1",
        "C536379:D:0",
    ]
    assert events["store_id"].to_list()[-1] == "France"
    assert events["quantity"].to_list() == [6.0, 6.0, 2.0, -1.0]  # cancellation = return
    assert set(events["currency"]) == {"GBP"}
    # London is on GMT in December and on BST (UTC+1) in July.
    assert [t.hour for t in events["sold_at"]] == [8, 8, 8, 8]


def test_same_file_gives_the_same_ids() -> None:
    a = apply_mapping(UCI, BUILTIN["uci-online-retail"])["event_id"]
    b = apply_mapping(UCI, BUILTIN["uci-online-retail"])["event_id"]
    assert a.equals(b)


def test_rejected_mapped_lines_keep_the_original_line() -> None:
    bad = UCI.with_columns(pl.lit("-1").alias("UnitPrice"))
    rej = validate_events(apply_mapping(bad, BUILTIN["uci-online-retail"])).rejected
    assert rej.height == 4
    assert '"InvoiceNo":"536365"' in rej["payload"][0]
    assert rej["value"][0] == "-1"


def test_custom_pairs_and_unknown_mapping() -> None:
    m = parse_mapping("replen", ["sku_id=Article", "store_id=Shop"], None)
    raw = pl.DataFrame(
        {
            "event_id": ["1"],
            "Article": ["A"],
            "Shop": ["S"],
            "sold_at": ["2024-01-01T00:00:00Z"],
            "quantity": ["1"],
            "unit_price": ["1"],
            "promo_id": ["P1"],
        }
    )
    ev = validate_events(apply_mapping(raw, m)).accepted
    assert ev.select("event_id", "store_id", "sku_id", "promo_id").row(0) == ("1", "S", "A", "P1")
    with pytest.raises(ValueError, match="unknown mapping"):
        parse_mapping("sap", [], None)
    with pytest.raises(ValueError, match="target=source"):
        parse_mapping("replen", ["sku_id"], None)
