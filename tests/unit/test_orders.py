from datetime import date

import polars as pl
from sqlalchemy import update
from sqlalchemy.orm import Session

from replen.db import connect
from replenishment.orders import OrderStore, PurchaseOrder
from replenishment.planner import protection_spans, suggest
from replenishment.rules import Rules

DAY = date(2024, 1, 1)  # a Monday


def _suggestion(
    on_hand: float = 0.0,
    min_value: float = 0.0,
    action: str = "hold",
    budget: float | None = None,
):
    rules = Rules.from_frames(
        pl.DataFrame(
            {
                "supplier_id": ["A"],
                "lead_time_mean": [2.0],
                "order_days": ["Mon"],
                "min_order_value": [min_value],
                "min_order_action": [action],
                "max_order_value": [budget],
            }
        ),
        pl.DataFrame(
            {
                "sku_id": ["x", "y"],
                "supplier_id": ["A", "A"],
                "unit_cost": [2.0, 3.0],
                "pack_size": [4, 1],
            }
        ),
    )
    keys = pl.DataFrame({"store_id": ["S1", "S1", "S2"], "sku_id": ["x", "y", "x"]})
    spans = protection_spans(keys, rules, DAY, 0.95)
    demand = keys.with_columns(
        demand_mean=pl.lit(10.0),
        demand_quantile=pl.lit(13.0),
        demand_sd=pl.lit(2.0),
        daily_mean=pl.lit(10 / 9),
        model_version=pl.lit("4"),
    )
    stock = keys.with_columns(on_hand=pl.lit(on_hand), on_order=pl.lit(0.0))
    return suggest(demand, stock, rules, spans)


def test_spans_cover_days_to_order_lead_time_and_review() -> None:
    s = _suggestion()
    assert set(s.evaluated["protection_days"]) == {9.0}  # order today, 2 days lead, weekly


def test_suggestions_group_into_one_po_per_supplier_and_store() -> None:
    s = _suggestion()
    assert s.headers.height == 2
    assert s.lines["quantity"].to_list() == [16, 13, 16]
    assert s.headers.filter(pl.col("store_id") == "S1")["value"][0] == 16 * 2.0 + 13 * 3.0


def test_po_under_the_supplier_minimum_is_held_or_filled() -> None:
    held = _suggestion(min_value=80.0, action="hold")  # S1 = 71, S2 = 32
    assert held.headers.height == 0 and held.held.height == 2
    filled = _suggestion(min_value=80.0, action="fill")
    assert (filled.headers["value"] >= 80.0).all()
    s2 = filled.lines.filter(pl.col("store_id") == "S2").row(0, named=True)
    assert s2["quantity"] == 16 + 4 * 6 and s2["min_order_fill"] == 24  # 4 → 6 more packs
    assert s2["quantity"] == s2["after_moq"] + s2["min_order_fill"]


def test_rerun_replaces_unreviewed_and_keeps_reviewed(db_url) -> None:
    store = OrderStore(db_url)
    first = store.replace_suggestions(DAY, _suggestion())
    assert (first.created, first.replaced) == (2, 0)
    with Session(store.engine) as session, session.begin():
        session.execute(
            update(PurchaseOrder).where(PurchaseOrder.store_id == "S1").values(status="approved")
        )
    again = store.replace_suggestions(DAY, _suggestion())
    assert (again.created, again.replaced, again.kept_reviewed) == (1, 1, 1)
    heads = store.purchase_orders(DAY)
    assert heads.height == 2
    assert sorted(heads["status"]) == ["approved", "suggested"]
    lines = store.po_lines(DAY)
    assert lines.height == 3
    assert {"raw_need", "safety_stock", "pack_adjustment"} <= set(lines.columns)
    assert [a["action"] for a in store.audit()] == ["plan", "plan"]


def test_nothing_to_order_stores_no_po(db_url) -> None:
    store = OrderStore(db_url)
    assert store.replace_suggestions(DAY, _suggestion(on_hand=100.0)).created == 0
    assert store.purchase_orders().is_empty()


def test_mark_stale_flags_only_unreviewed_suggestions(db_url) -> None:
    store = OrderStore(db_url)
    store.replace_suggestions(DAY, _suggestion())
    with Session(store.engine) as session, session.begin():
        session.execute(
            update(PurchaseOrder).where(PurchaseOrder.store_id == "S1").values(status="approved")
        )
    assert store.mark_stale() == 1
    heads = store.purchase_orders(DAY).sort("store_id")
    assert heads["stale"].to_list() == [False, True]


def test_failed_plan_keeps_yesterdays_suggestions_marked_stale(settings, tmp_path) -> None:
    from jobs.ledger import RunLedger
    from jobs.runtime import ensure_schema
    from jobs.scheduler import execute

    settings.ensure_dirs()
    ensure_schema(settings.db_url)
    OrderStore(settings.db_url).replace_suggestions(DAY, _suggestion())
    assert execute(settings, "replenish", "2024-01-02T05:00:00+00:00") == "failed"
    heads = OrderStore(settings.db_url).purchase_orders(DAY)
    assert heads.height == 2 and heads["stale"].all()
    assert RunLedger(connect(settings.db_url)).history("replenish")[0]["status"] == "failed"


def test_review_moves_through_the_status_machine_with_an_audit_trail(db_url) -> None:
    import pytest

    from kernel.errors import InvalidInput, NotFound
    from replenishment.erp.outbox import Outbox
    from replenishment.orders import OrderError

    store = OrderStore(db_url)
    store.replace_suggestions(DAY, _suggestion())
    heads = store.purchase_orders(DAY).sort("store_id")
    s1, s2 = heads["po_id"].to_list()
    assert store.edit_line(s1, "x", 20, "ana", "promo next week") == (16, 20)
    with pytest.raises(InvalidInput, match="needs a reason"):
        store.edit_line(s1, "x", 24, "ana", "")
    with pytest.raises(NotFound, match="no line for sku_id='zz'"):
        store.edit_line(s1, "zz", 1, "ana", "typo")
    store.transition(s1, "approved", "ana")
    with pytest.raises(OrderError, match="is approved; it can become exported or acknowledged"):
        store.transition(s1, "superseded", "ana")
    with pytest.raises(InvalidInput, match="needs a reason"):
        store.transition(s2, "rejected", "ana")
    store.transition(s2, "rejected", "ana", reason="supplier on holiday")
    with pytest.raises(OrderError, match="is rejected; it can become nothing else"):
        store.transition(s2, "approved", "ana")
    # Approving wrote the delivery record of revision 1, in the same transaction.
    pending = Outbox(db_url).deliveries("pending")
    assert pending.select("po_id", "revision", "idempotency_key").rows() == [
        (s1, 1, f"replen-po-{s1}-r1")
    ]
    store.transition(s1, "exported", "erp-job")
    store.transition(s1, "acknowledged", "erp", detail={"erp_ref": "PO-778"})
    trail = [(h["action"], h["actor"]) for h in store.history(s1)]
    assert trail == [
        ("edit", "ana"),
        ("approved", "ana"),
        ("exported", "erp-job"),
        ("acknowledged", "erp"),
    ]
    line = store.po_lines(DAY).filter(pl.col("po_id") == s1).sort("sku_id").row(0, named=True)
    assert (line["quantity"], line["suggested_quantity"]) == (20, 16)


def test_an_edit_after_delivery_is_a_new_revision_of_the_same_order(db_url) -> None:
    from replenishment.erp.outbox import Outbox

    store = OrderStore(db_url)
    store.replace_suggestions(DAY, _suggestion())
    po = int(store.purchase_orders(DAY).sort("store_id")["po_id"][0])
    store.transition(po, "approved", "ana")
    store.transition(po, "exported", "erp-job")
    assert store.edit_line(po, "x", 8, "ana", "shop refit") == (16, 8)
    head = store.purchase_orders(DAY).filter(pl.col("po_id") == po).row(0, named=True)
    assert (head["status"], head["revision"]) == ("approved", 2)
    keys = Outbox(db_url).deliveries().sort("revision")["idempotency_key"].to_list()
    assert keys == [f"replen-po-{po}-r1", f"replen-po-{po}-r2"]
    assert store.history(po)[-1]["action"] == "revise"


def test_rejecting_an_approved_po_cancels_its_pending_delivery(db_url) -> None:
    from replenishment.erp.outbox import Outbox

    store = OrderStore(db_url)
    store.replace_suggestions(DAY, _suggestion())
    po = int(store.purchase_orders(DAY)["po_id"][0])
    store.transition(po, "approved", "ana")
    store.transition(po, "rejected", "ana", reason="double order by phone")
    assert Outbox(db_url).deliveries()["status"].to_list() == ["cancelled"]


def test_a_newer_plan_supersedes_open_suggestions_of_earlier_days(db_url) -> None:
    from datetime import timedelta

    store = OrderStore(db_url)
    store.replace_suggestions(DAY, _suggestion())
    approved = int(store.purchase_orders(DAY).sort("store_id")["po_id"][0])
    store.transition(approved, "approved", "ana")
    report = store.replace_suggestions(DAY + timedelta(days=1), _suggestion())
    assert report.superseded == 1
    old = store.purchase_orders(DAY).sort("store_id")
    assert old["status"].to_list() == ["approved", "superseded"]
    assert store.history(int(old["po_id"][1]))[-1]["action"] == "superseded"


def test_budget_buys_the_most_shortage_avoided_per_money_first() -> None:
    full = _suggestion()
    s1 = full.lines.filter(pl.col("store_id") == "S1")  # x: 16 × 2.0, y: 13 × 3.0 = 71
    capped = _suggestion(budget=40.0)
    lines = capped.lines.filter(pl.col("store_id") == "S1")
    assert (lines["value"].sum()) <= 40.0 < s1["value"].sum()
    for r in capped.lines.iter_rows(named=True):
        assert r["quantity"] == r["after_moq"] + r["min_order_fill"] + r["budget_adjustment"]
        assert r["quantity"] % r["pack_size"] == 0
    # Same demand; x's units cost less, so x ends with at least as many units as y, and
    # the budget is used up to less than the dearest pack.
    units = dict(lines.select("sku_id", "quantity").iter_rows())
    assert units["x"] >= units.get("y", 0)
    assert lines["value"].sum() > 40.0 - 4 * 2.0


def test_planner_plot_draws_each_line(tmp_path) -> None:
    from datetime import timedelta

    from replen.plots import plot_po_lines

    lines = _suggestion().lines.filter(pl.col("store_id") == "S1")
    history = pl.DataFrame(
        {
            "store_id": "S1",
            "sku_id": ["x"] * 30 + ["y"] * 30,
            "date": [DAY - timedelta(days=30 - i) for i in range(30)] * 2,
            "units": [float(i % 5) for i in range(60)],
        }
    )
    forecast = pl.DataFrame(
        {
            "store_id": "S1",
            "sku_id": ["x"] * 7,
            "date": [DAY + timedelta(days=i) for i in range(7)],
            "mean": 2.0,
            "q50": 1.5,
            "q95": 4.0,
        }
    )
    path = plot_po_lines(history, forecast, lines, tmp_path / "po.png")
    assert path.stat().st_size > 5_000
