"""Stock positions and master data in the database: idempotent loads, corrections, the latest
position as of a plan date, rejected rows kept."""

from __future__ import annotations

from datetime import date

import polars as pl


def _positions(on_hand: list[str], as_of: str = "2024-01-10T22:00:00Z") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_id": ["S1", "S1", "S2"],
            "sku_id": ["a", "b", "a"],
            "as_of": [as_of] * 3,
            "on_hand": on_hand,
            "on_order": ["0", "6", "0"],
        }
    )


def test_a_resend_is_all_duplicates_and_a_correction_replaces_the_value(rt) -> None:
    from jobs.erp import ingest_feed

    first = ingest_feed(rt, "stock", _positions(["4", "0", "7"]), source="stock.csv")
    assert (first.received, first.accepted, first.duplicates) == (3, 3, 0)
    again = ingest_feed(rt, "stock", _positions(["4", "0", "7"]), source="stock.csv")
    assert (again.accepted, again.duplicates, again.updated) == (0, 3, 0)
    fixed = ingest_feed(rt, "stock", _positions(["4", "2", "7"]), source="stock.csv")
    assert (fixed.accepted, fixed.duplicates, fixed.updated) == (0, 2, 1)
    latest = rt.positions.latest(date(2024, 1, 11)).sort("store_id", "sku_id")
    assert latest["on_hand"].to_list() == [4.0, 2.0, 7.0]


def test_the_plan_reads_the_latest_position_taken_by_its_date(rt) -> None:
    from jobs.erp import ingest_feed

    ingest_feed(rt, "stock", _positions(["4", "0", "7"], "2024-01-10T22:00:00Z"), source="d1")
    ingest_feed(rt, "stock", _positions(["1", "1", "1"], "2024-01-12T22:00:00Z"), source="d3")
    old = ingest_feed(rt, "stock", _positions(["9", "9", "9"], "2024-01-11T22:00:00Z"), source="d2")
    assert old.older_than_current == 3  # kept as history; the newer one stays current
    on = lambda d: rt.positions.latest(d).sort("store_id", "sku_id")["on_hand"].to_list()  # noqa: E731
    assert on(date(2024, 1, 10)) == [4.0, 0.0, 7.0]
    assert on(date(2024, 1, 11)) == [9.0, 9.0, 9.0]
    assert on(date(2024, 1, 13)) == [1.0, 1.0, 1.0]
    assert rt.positions.latest(date(2024, 1, 9)).is_empty()


def test_rejected_rows_are_kept_with_rule_line_and_raw_row(rt) -> None:
    from jobs.erp import ingest_feed

    report = ingest_feed(
        rt, "stock", _positions(["4", "many", "-2"]), source="stock.csv", first_line=2
    )
    assert (report.accepted, report.rejected) == (1, 2)
    assert report.rejected_by_rule == {"on_hand.nonnegative": 1, "on_hand.number": 1}
    kept = rt.positions.rejects("stock").sort("line")
    assert kept.select("line", "rule", "value", "source").rows() == [
        (3, "on_hand.number", "many", "stock.csv"),
        (4, "on_hand.nonnegative", "-2", "stock.csv"),
    ]
    assert '"on_hand":"many"' in kept["payload"][0]


def test_item_and_store_names_load_by_id_and_a_later_load_updates(rt) -> None:
    from jobs.erp import ingest_feed

    items = pl.DataFrame(
        {"sku_id": ["a", "b"], "name": ["Apples 1kg", "Bread"], "unit": ["bag", None]}
    )
    assert ingest_feed(rt, "items", items, source="items.csv").accepted == 2
    renamed = items.with_columns(pl.Series("name", ["Apples 1 kg", "Bread"]))
    report = ingest_feed(rt, "items", renamed, source="items.csv")
    assert (report.updated, report.duplicates) == (1, 1)
    master = rt.positions.master("items")
    assert master.select("sku_id", "name", "unit").rows() == [
        ("a", "Apples 1 kg", "bag"),
        ("b", "Bread", "unit"),
    ]


def test_a_resent_rejected_row_is_recognised_and_kept_once(rt) -> None:
    from jobs.erp import ingest_feed

    bad = _positions(["4", "many", "-2"])
    first = ingest_feed(rt, "stock", bad, source="stock.csv", first_line=2)
    again = ingest_feed(rt, "stock", bad, source="stock-copy.csv", first_line=2)
    assert (first.rejected, first.already_quarantined) == (2, 0)
    assert (again.rejected, again.already_quarantined, again.duplicates) == (2, 2, 1)
    assert again.received == again.accepted + again.updated + again.duplicates + again.rejected
    kept = rt.positions.rejects("stock")
    assert kept.height == 2 and set(kept["batch_id"]) == {first.batch_id}
    assert kept["reject_id"].n_unique() == 2
    # The reply lists every rejected row of this delivery, kept before or not.
    assert again.rejected_lines is not None and again.rejected_lines.height == 2
    assert "rejected_lines" not in again.to_dict()
    # A row fixed at the source is accepted; the bad row sent once more is still known.
    fixed = ingest_feed(rt, "stock", _positions(["4", "1", "-2"]), source="stock.csv")
    assert (fixed.accepted, fixed.rejected, fixed.already_quarantined) == (1, 1, 1)
    assert rt.positions.rejects("stock").height == 2


def test_rejected_receipts_resent_are_kept_once(rt) -> None:
    from jobs.erp import ingest_feed

    rows = pl.DataFrame(
        {
            "receipt_id": ["R1", "R2"],
            "po_id": ["x", "999999"],  # not a number; no such PO
            "sku_id": ["a", "a"],
            "quantity": ["1", "1"],
            "received_at": ["2024-01-10T10:00:00Z"] * 2,
        }
    )
    first = ingest_feed(rt, "receipts", rows, source="r.csv")
    again = ingest_feed(rt, "receipts", rows, source="r.csv")
    assert first.rejected == again.rejected == 2
    assert (first.already_quarantined, again.already_quarantined) == (0, 2)
    assert rt.positions.rejects("receipts").height == 2
