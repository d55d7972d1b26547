"""The adapters against the fake ERP process: resets are retried, a bad signature or a confirmed
Odoo order is a dead letter with its reason, a revision changes the same order in place."""

from __future__ import annotations

import random

import polars as pl
import pytest

from replenishment.erp.adapters import WebhookAdapter
from replenishment.erp.delivery import deliver_pass
from replenishment.erp.odoo import OdooAdapter
from replenishment.erp.outbox import Outbox, RetryPolicy

POLICY = RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=50, lease_seconds=30)


def _drain(outbox: Outbox, adapter) -> None:  # type: ignore[no-untyped-def]
    """Passes until nothing is pending (each pass reschedules failures a few ms later)."""
    for _ in range(200):
        deliver_pass(outbox, adapter, POLICY, concurrency=4, rng=random.Random(0))
        if not outbox.counts().get("pending"):
            return
        import time

        time.sleep(0.06)  # the backoff of this test's policy: at most 50 ms
    raise AssertionError(f"still pending: {outbox.counts()}")


def _odoo(fake_erp) -> OdooAdapter:  # type: ignore[no-untyped-def]
    db, user, key = fake_erp.odoo
    return OdooAdapter(fake_erp.url, db, user, key, timeout=5)


def test_connection_resets_are_retried_and_each_po_arrives_once(
    db_url, approved_pos, fake_erp
) -> None:
    ids = approved_pos(30)
    fake_erp.set_faults(reset=0.3, seed=4)
    _drain(Outbox(db_url), WebhookAdapter(fake_erp.webhook_url, fake_erp.secret, timeout=5))
    resets = sum(r["fault"] == "reset" for r in fake_erp.requests())
    assert resets >= 3
    assert sorted(o["po_id"] for o in fake_erp.orders()) == sorted(ids)


def test_a_bad_signature_is_refused_for_good_and_dead_lettered(db_url, approved_pos, fake_erp):
    approved_pos(2)
    outbox = Outbox(db_url)
    report = deliver_pass(outbox, WebhookAdapter(fake_erp.webhook_url, "wrong-key"), POLICY)
    assert (report.dead, report.delivered) == (2, 0)
    reasons = outbox.deliveries("dead")["dead_reason"].to_list()
    assert all("HTTP 401" in r and "signature" in r.lower() for r in reasons)
    assert fake_erp.orders() == []


def test_an_odoo_revision_rewrites_the_draft_order_in_place(db_url, approved_pos, fake_erp):
    from replenishment.orders import OrderStore

    fake_erp.seed(
        partners=[{"ref": "A"}], products=[{"default_code": f"K{j:03d}"} for j in range(20)]
    )
    po = approved_pos(1)[0]
    outbox = Outbox(db_url)
    _drain(outbox, _odoo(fake_erp))
    store = OrderStore(db_url)
    sku = store.po_lines(po_id=po)["sku_id"][0]
    store.edit_line(po, sku, 6, "ana", "less space")
    _drain(outbox, _odoo(fake_erp))
    (order,) = fake_erp.orders()
    assert order["origin"] == f"REPLEN-{po}" and order["versions"] == 2
    assert {x["sku_id"]: x["product_qty"] for x in order["lines"]}[sku] == 6.0
    head = store.purchase_orders().filter(pl.col("po_id") == po).row(0, named=True)
    assert (head["status"], head["revision"], head["erp_ref"]) == ("exported", 2, order["name"])


def test_a_revision_of_a_confirmed_odoo_order_is_a_dead_letter_saying_so(
    db_url, approved_pos, fake_erp
) -> None:
    from replenishment.orders import OrderStore

    fake_erp.seed(
        partners=[{"ref": "A"}], products=[{"default_code": f"K{j:03d}"} for j in range(20)]
    )
    po = approved_pos(1)[0]
    outbox = Outbox(db_url)
    _drain(outbox, _odoo(fake_erp))
    fake_erp.confirm()  # the buyer confirmed it in Odoo
    store = OrderStore(db_url)
    store.edit_line(po, store.po_lines(po_id=po)["sku_id"][0], 6, "ana", "late change")
    _drain(outbox, _odoo(fake_erp))
    (reason,) = outbox.deliveries("dead")["dead_reason"].to_list()
    assert "is purchase" in reason and "edit it in Odoo" in reason


def test_odoo_without_the_product_is_a_dead_letter_naming_it(db_url, approved_pos, fake_erp):
    fake_erp.seed(partners=[{"ref": "A"}])
    approved_pos(1)
    outbox = Outbox(db_url)
    deliver_pass(outbox, _odoo(fake_erp), POLICY)
    (reason,) = outbox.deliveries("dead")["dead_reason"].to_list()
    assert "no product with default_code" in reason


@pytest.mark.parametrize("pending", [False, True])
def test_the_deliver_job_needs_an_adapter_only_when_there_is_something_to_send(
    settings, db_url, approved_pos, pending
) -> None:
    from jobs.ledger import RunLedger
    from jobs.scheduler import execute

    settings = settings.model_copy(update={"database_url": db_url})
    if pending:
        approved_pos(1)
    status = execute(settings, "deliver", "2024-01-01T05:00:00+00:00")
    assert status == ("failed" if pending else "succeeded")
    record = RunLedger(db_url).history("deliver")[0]
    if pending:
        assert "no ERP adapter configured" in record["error"]
