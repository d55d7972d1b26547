"""What a plan starts from: the latest stock position plus Replen's own POs the position cannot
know yet; store×SKUs without a position, a rule or history are not planned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from replenishment.position import own_on_order, stock_position, triage
from replenishment.rules import Rules

T0 = datetime(2024, 1, 10, 22, tzinfo=UTC)  # the position was taken then
DT = pl.Datetime("us", "UTC")


def _lines(known_at: datetime | None, quantity: float = 24.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "po_id": [1],
            "store_id": ["S1"],
            "sku_id": ["a"],
            "quantity": [quantity],
            "erp_known_at": [known_at],
        },
        schema_overrides={"erp_known_at": DT},
    )


def _receipts(*rows: tuple[float, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "po_id": [1] * len(rows),
            "sku_id": ["a"] * len(rows),
            "quantity": [q for q, _ in rows],
            "received_at": [t for _, t in rows],
        },
        schema={"po_id": pl.Int64, "sku_id": pl.String, "quantity": pl.Float64, "received_at": DT},
    )


POSITION = pl.DataFrame(
    {
        "store_id": ["S1"],
        "sku_id": ["a"],
        "as_of": [T0],
        "on_hand": [5.0],
        "on_order": [0.0],
        "in_transit": [2.0],
        "backorders": [1.0],
    },
    schema_overrides={"as_of": DT},
)


def _own(lines: pl.DataFrame, receipts: pl.DataFrame) -> float:
    out = own_on_order(lines, receipts, POSITION)
    return float(out["replen_on_order"].sum()) if out.height else 0.0


def test_a_po_the_erp_does_not_hold_yet_counts_in_full() -> None:
    assert _own(_lines(None), _receipts()) == 24.0
    assert _own(_lines(T0 + timedelta(hours=1)), _receipts()) == 24.0  # after the position


def test_a_po_the_erp_held_when_the_position_was_taken_is_not_counted_twice() -> None:
    # The ERP's on_order (or on_hand, once received) already has it.
    assert _own(_lines(T0 - timedelta(hours=1)), _receipts()) == 0.0


def test_goods_received_before_the_position_are_in_on_hand_not_on_order() -> None:
    early = _receipts((10.0, T0 - timedelta(hours=3)), (4.0, T0 + timedelta(hours=3)))
    assert _own(_lines(None), early) == 24.0 - 10.0  # the later 4 are not in on_hand yet


def test_the_position_adds_erp_orders_in_transit_and_own_orders_and_keeps_the_parts() -> None:
    own = pl.DataFrame({"store_id": ["S1"], "sku_id": ["a"], "replen_on_order": [24.0]})
    row = stock_position(POSITION, own).row(0, named=True)
    assert row["on_order"] == 0.0 + 2.0 + 24.0
    assert (row["erp_on_order"], row["in_transit"], row["replen_on_order"]) == (0.0, 2.0, 24.0)
    assert row["backorders"] == 1.0 and row["position_as_of"].startswith("2024-01-10T22:00")


def test_store_skus_without_a_rule_a_position_or_history_are_unplanned_with_the_reason() -> None:
    rules = Rules.from_frames(
        pl.DataFrame({"supplier_id": ["A"], "lead_time_mean": [2.0], "order_days": ["Mon"]}),
        pl.DataFrame({"sku_id": ["a", "b", "c"], "supplier_id": ["A"] * 3, "unit_cost": [1.0] * 3}),
    )
    keys = pl.DataFrame({"store_id": ["S1"] * 4, "sku_id": ["a", "b", "c", "z"]})
    positions = pl.DataFrame({"store_id": ["S1", "S1", "S1"], "sku_id": ["a", "c", "z"]})
    history = pl.DataFrame({"store_id": ["S1", "S1", "S1"], "sku_id": ["a", "b", "z"]})
    plannable, unplanned = triage(keys, rules, positions, history)
    assert plannable.rows() == [("S1", "a")]
    assert unplanned.select("sku_id", "reason").rows() == [
        ("c", "no_forecast"),
        ("b", "no_position"),
        ("z", "no_rule"),
    ]
    assert "replen ingest stock" in unplanned.filter(pl.col("sku_id") == "b")["detail"][0]
