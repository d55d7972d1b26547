"""What the ERP sends back: acknowledgements move POs to acknowledged, goods receipts receive
them fully or in part; supplier lead times are measured from receipts."""

from __future__ import annotations

import polars as pl
import pytest
from test_orders import DAY, _suggestion


@pytest.fixture()
def ordered(rt):
    """Two approved POs: S1 (x 16, y 13) and S2 (x 16), exported to the ERP."""
    store = rt.orders
    store.replace_suggestions(DAY, _suggestion())
    heads = store.purchase_orders(DAY).sort("store_id")
    s1, s2 = heads["po_id"].to_list()
    store.approve_many([s1, s2], "ana")
    for po in (s1, s2):
        store.transition(po, "exported", "erp-delivery")
    return rt, s1, s2


def _receipts(rows: list[tuple]) -> pl.DataFrame:
    cols = ("receipt_id", "po_id", "store_id", "sku_id", "quantity", "received_at")
    return pl.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])


def _status(rt, po: int) -> str:  # type: ignore[no-untyped-def]
    heads = rt.orders.purchase_orders()
    return str(heads.filter(pl.col("po_id") == po)["status"][0])


def test_a_full_receipt_closes_the_po_and_a_resend_is_a_duplicate(ordered) -> None:
    from jobs.erp import ingest_feed

    rt, s1, _ = ordered
    rows = _receipts(
        [
            ("GR1", str(s1), "S1", "x", "16", "2024-01-03T10:00:00Z"),
            ("GR1", str(s1), "S1", "y", "13", "2024-01-03T10:00:00Z"),
        ]
    )
    first = ingest_feed(rt, "receipts", rows, source="gr.csv")
    assert (first.accepted, first.rejected) == (2, 0)
    assert _status(rt, s1) == "received"
    again = ingest_feed(rt, "receipts", rows, source="gr.csv")
    assert (again.accepted, again.duplicates) == (0, 2)
    lines = rt.orders.po_lines(po_id=s1).sort("sku_id")
    assert lines["received_quantity"].to_list() == [16.0, 13.0]


def test_a_partial_receipt_keeps_the_po_open_for_the_rest(ordered) -> None:
    from jobs.erp import ingest_feed

    rt, s1, _ = ordered
    ingest_feed(
        rt,
        "receipts",
        _receipts([("GR1", str(s1), "S1", "x", "10", "2024-01-03T10:00:00Z")]),
        source="gr",
    )
    assert _status(rt, s1) == "exported"
    _lines, receipts = rt.orders.own_orders()
    assert receipts.select("po_id", "sku_id", "quantity").rows() == [(s1, "x", 10.0)]


def test_receipts_the_stored_orders_contradict_are_rejected_by_rule(ordered) -> None:
    from jobs.erp import ingest_feed

    rt, s1, s2 = ordered
    rows = _receipts(
        [
            ("GR1", "999", "S1", "x", "1", "2024-01-03T10:00:00Z"),
            ("GR2", str(s1), "S2", "x", "1", "2024-01-03T10:00:00Z"),
            ("GR3", str(s2), "S2", "y", "1", "2024-01-03T10:00:00Z"),
            ("GR4", str(s2), "S2", "x", "4", "2024-01-03T10:00:00Z"),
            ("GR4", str(s2), "S2", "x", "4", "2024-01-03T10:00:00Z"),
        ]
    )
    report = ingest_feed(rt, "receipts", rows, source="gr.csv", first_line=2)
    assert (report.received, report.accepted, report.duplicates, report.rejected) == (5, 1, 1, 3)
    assert report.rejected_by_rule == {
        "po_id.unknown": 1,
        "sku_id.not_on_po": 1,
        "store_id.mismatch": 1,
    }
    conflict = _receipts([("GR4", str(s2), "S2", "x", "5", "2024-01-03T10:00:00Z")])
    later = ingest_feed(rt, "receipts", conflict, source="gr2.csv")
    assert later.rejected_by_rule == {"receipt_id.conflict": 1}


def test_an_acknowledgement_records_the_erp_number_and_the_confirmed_quantities(ordered) -> None:
    from jobs.erp import ingest_feed

    rt, s1, _ = ordered
    acks = pl.DataFrame(
        {
            "po_id": [str(s1), str(s1)],
            "erp_po_number": ["P00042", "P00042"],
            "sku_id": ["x", "y"],
            "confirmed_quantity": ["12", "13"],
            "confirmed_delivery": ["2024-01-04", "2024-01-03"],
        }
    )
    report = ingest_feed(rt, "acks", acks, source="acks.csv")
    assert report.accepted == 2 and _status(rt, s1) == "acknowledged"
    head = rt.orders.purchase_orders().filter(pl.col("po_id") == s1).row(0, named=True)
    assert head["erp_ref"] == "P00042"
    lines = rt.orders.po_lines(po_id=s1).sort("sku_id")
    assert lines["confirmed_quantity"].to_list() == [12.0, 13.0]
    # The supplier confirmed 12 of x: receiving 12 and 13 closes the PO.
    by_number = (
        _receipts(
            [
                ("GR9", None, None, "x", "12", "2024-01-04T09:00:00Z"),
                ("GR9", None, None, "y", "13", "2024-01-04T09:00:00Z"),
            ]
        )
        .drop("po_id")
        .with_columns(pl.lit("P00042").alias("erp_po_number"))
    )
    ingest_feed(rt, "receipts", by_number, source="gr.csv")
    assert _status(rt, s1) == "received"


def test_lead_times_are_measured_from_order_date_to_the_first_receipt(ordered) -> None:
    from jobs.erp import ingest_feed, lead_time_report, update_lead_times

    rt, s1, s2 = ordered
    rt.rules_store.save(_suggestion_rules(), "test")
    rows = _receipts(
        [
            ("GR1", str(s1), "S1", "x", "16", "2024-01-04T10:00:00Z"),  # 3 days, late
            ("GR2", str(s2), "S2", "x", "16", "2024-01-02T10:00:00Z"),  # 1 day, on time
        ]
    )
    ingest_feed(rt, "receipts", rows, source="gr.csv")
    report = lead_time_report(rt).row(0, named=True)
    assert (report["supplier_id"], report["receipts"]) == ("A", 2)
    assert report["measured_mean"] == 2.0 and report["on_time_rate"] == 0.5
    assert report["configured_mean"] == 2.0
    assert update_lead_times(rt, min_receipts=3, actor="ana") == {}
    changed = update_lead_times(rt, min_receipts=2, actor="ana")
    assert changed["A"]["mean"] == 2.0 and changed["A"]["std"] == pytest.approx(1.414, abs=1e-3)
    assert rt.rules().suppliers["lead_time_std"][0] == pytest.approx(1.414, abs=1e-3)


def _suggestion_rules():  # type: ignore[no-untyped-def]
    from replenishment.rules import Rules

    return Rules.from_frames(
        pl.DataFrame({"supplier_id": ["A"], "lead_time_mean": [2.0], "order_days": ["Mon"]}),
        pl.DataFrame({"sku_id": ["x", "y"], "supplier_id": ["A", "A"], "unit_cost": [2.0, 3.0]}),
    )
