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


def test_rerun_replaces_unreviewed_and_keeps_reviewed(tmp_path) -> None:
    store = OrderStore(connect(f"sqlite:///{tmp_path / 'po.db'}"))
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


def test_nothing_to_order_stores_no_po(tmp_path) -> None:
    store = OrderStore(connect(f"sqlite:///{tmp_path / 'po.db'}"))
    assert store.replace_suggestions(DAY, _suggestion(on_hand=100.0)).created == 0
    assert store.purchase_orders().is_empty()


def test_mark_stale_flags_only_unreviewed_suggestions(tmp_path) -> None:
    store = OrderStore(connect(f"sqlite:///{tmp_path / 'po.db'}"))
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
    from jobs.scheduler import execute

    settings.ensure_dirs()
    OrderStore(connect(settings.db_url)).replace_suggestions(DAY, _suggestion())
    assert execute(settings, "replenish", "2024-01-02T05:00:00+00:00") == "failed"
    heads = OrderStore(settings.db_url).purchase_orders(DAY)
    assert heads.height == 2 and heads["stale"].all()
    assert RunLedger(connect(settings.db_url)).history("replenish")[0]["status"] == "failed"


def test_review_moves_through_the_status_machine_with_an_audit_trail(tmp_path) -> None:
    import pytest

    from kernel.errors import InvalidInput, NotFound
    from replenishment.orders import OrderError

    store = OrderStore(connect(f"sqlite:///{tmp_path / 'po.db'}"))
    store.replace_suggestions(DAY, _suggestion())
    heads = store.purchase_orders(DAY).sort("store_id")
    s1, s2 = heads["po_id"].to_list()
    assert store.edit_line(s1, "x", 20, "ana", "promo next week") == (16, 20)
    with pytest.raises(InvalidInput, match="needs a reason"):
        store.edit_line(s1, "x", 24, "ana", "")
    with pytest.raises(NotFound, match="no line for sku_id='zz'"):
        store.edit_line(s1, "zz", 1, "ana", "typo")
    store.transition(s1, "approved", "ana")
    with pytest.raises(OrderError, match="only suggested POs can be edited"):
        store.edit_line(s1, "x", 1, "ana", "late change")
    with pytest.raises(OrderError, match="is approved; it can become exported or rejected"):
        store.transition(s1, "acknowledged", "erp")
    with pytest.raises(InvalidInput, match="needs a reason"):
        store.transition(s2, "rejected", "ana")
    store.transition(s2, "rejected", "ana", reason="supplier on holiday")
    assert store.open_on_order(DAY).sort("sku_id")["po_on_order"].to_list() == [20.0, 13.0]
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
    assert store.open_on_order(DAY).is_empty()  # exported POs are the ERP's to count


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
