"""The same stores on PostgreSQL (REPLEN_TEST_POSTGRES_URL; .ci/run starts a server)."""

from __future__ import annotations

import os
from datetime import date

import polars as pl
import pytest
from sqlalchemy import create_engine, text

URL = os.environ.get("REPLEN_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not URL, reason="REPLEN_TEST_POSTGRES_URL is not set (no PostgreSQL server to test on)"
)


@pytest.fixture()
def pg_url() -> str:
    """A clean schema for each test."""
    assert URL
    engine = create_engine(URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return URL


def test_migrations_build_the_schema_without_drift(pg_url) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from replen.db import head, include_object, metadata, upgrade

    assert upgrade(pg_url) == head() == upgrade(pg_url)
    with create_engine(pg_url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object})
        assert compare_metadata(ctx, metadata()) == []


def test_po_store_ledger_lock_and_rules_on_postgres(pg_url) -> None:
    from jobs.ledger import AlertStore, RunLedger
    from jobs.lock import SchedulerBusy, SchedulerLock
    from replen.db import engine, upgrade
    from replenishment.orders import OrderStore
    from replenishment.planner import protection_spans, suggest
    from replenishment.rules import Rules
    from replenishment.rules_store import RulesStore

    upgrade(pg_url)
    pg_url = engine(pg_url)  # the process's one engine, as the entry points use
    rules = Rules.from_frames(
        pl.DataFrame({"supplier_id": ["A"], "lead_time_mean": [2.0], "order_days": ["Mon"]}),
        pl.DataFrame({"sku_id": ["x"], "supplier_id": ["A"], "unit_cost": [2.0], "pack_size": [4]}),
    )
    RulesStore(pg_url).save(rules, "test")
    assert RulesStore(pg_url).load().summary() == rules.summary()

    day = date(2024, 1, 1)
    keys = pl.DataFrame({"store_id": ["S1"], "sku_id": ["x"]})
    demand = keys.with_columns(
        demand_mean=pl.lit(10.0),
        demand_quantile=pl.lit(13.0),
        demand_sd=pl.lit(2.0),
        daily_mean=pl.lit(1.0),
        model_version=pl.lit("1"),
    )
    stock = keys.with_columns(on_hand=pl.lit(0.0), on_order=pl.lit(0.0))
    sug = suggest(demand, stock, rules, protection_spans(keys, rules, day, 0.95))
    store = OrderStore(pg_url)
    assert store.replace_suggestions(day, sug).created == 1
    assert store.replace_suggestions(day, sug).replaced == 1
    po = store.purchase_orders(day)["po_id"][0]
    store.transition(po, "approved", "ana")
    assert [h["action"] for h in store.history(po)] == ["approved"]

    ledger = RunLedger(pg_url)
    assert ledger.begin("refresh", "s1") and ledger.begin("refresh", "s1")  # crashed: rerun
    ledger.finish("refresh", "s1", "succeeded")
    assert not ledger.begin("refresh", "s1")
    AlertStore(pg_url).raise_alert("job", "refresh", "test")

    lock = SchedulerLock(pg_url)
    lock.acquire()
    with pytest.raises(SchedulerBusy):
        SchedulerLock(pg_url).acquire()
    lock.release()


def test_positions_outbox_and_receipts_on_postgres(pg_url) -> None:
    from datetime import UTC, datetime

    from replen.db import upgrade
    from replenishment.erp.adapters import Accepted
    from replenishment.erp.inbound import apply_receipts
    from replenishment.erp.outbox import Outbox, RetryPolicy
    from replenishment.orders import OrderStore
    from replenishment.planner import Suggestion
    from replenishment.positions import LoadReport, PositionStore

    upgrade(pg_url)
    positions = PositionStore(pg_url)
    rows = pl.DataFrame(
        {
            "store_id": ["S1"],
            "sku_id": ["x"],
            "as_of": [datetime(2024, 1, 1, 22, tzinfo=UTC)],
            "on_hand": [3.0],
            "on_order": [0.0],
            "in_transit": [0.0],
            "backorders": [0.0],
        }
    )
    empty = pl.DataFrame(
        schema={
            "line": pl.Int64,
            "key": pl.String,
            "rule": pl.String,
            "field": pl.String,
            "value": pl.String,
            "message": pl.String,
            "payload": pl.String,
        }
    )
    report = positions.save_positions(rows, empty, LoadReport("stock", "b1", received=1), "t")
    assert report.accepted == 1
    again = positions.save_positions(rows, empty, LoadReport("stock", "b2", received=1), "t")
    assert again.duplicates == 1
    assert positions.latest(date(2024, 1, 2))["on_hand"].to_list() == [3.0]

    day = date(2024, 1, 2)
    lines = pl.DataFrame(
        {
            "supplier_id": ["A"],
            "store_id": ["S1"],
            "sku_id": ["x"],
            "quantity": [12],
            "unit_cost": [2.0],
            "value": [24.0],
        }
    )
    heads = pl.DataFrame(
        {
            "supplier_id": ["A"],
            "store_id": ["S1"],
            "order_date": [day],
            "expected_delivery": [day],
            "currency": ["EUR"],
            "value": [24.0],
            "model_version": ["1"],
        }
    )
    store = OrderStore(pg_url)
    store.replace_suggestions(day, Suggestion(heads, lines, lines, lines))
    (po,) = store.purchase_orders(day)["po_id"].to_list()
    assert store.approve_many([po], "ana") == ([po], {})
    outbox = Outbox(pg_url)
    policy = RetryPolicy()
    (claim,) = outbox.claim("w1", 10, policy)
    assert outbox.claim("w2", 10, policy) == []
    outbox.record("w1", [(claim, Accepted("ERP-1"))], policy, "webhook", True)
    assert store.purchase_orders(day)["status"].to_list() == ["exported"]
    receipt = pl.DataFrame(
        {
            "_line": [1],
            "receipt_id": ["GR1"],
            "po_id": [float(po)],
            "erp_po_number": [None],
            "store_id": ["S1"],
            "sku_id": ["x"],
            "quantity": [12.0],
            "received_at": [datetime(2024, 1, 3, 10, tzinfo=UTC)],
        },
        schema_overrides={"erp_po_number": pl.String},
    )
    assert apply_receipts(pg_url, receipt).received_in_full == 1
    assert store.purchase_orders(day)["status"].to_list() == ["received"]
