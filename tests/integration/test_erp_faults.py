"""Exactly once through a faulty ERP and a worker killed -9: every approved PO is in the ERP
once with its lines, or in the dead letters with its reason; nothing lost, nothing doubled."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import polars as pl
import pytest
from erp_helpers import wait_for

pytestmark = pytest.mark.slow

N_POS = 1000
POISON = 5  # POs carrying a SKU the ERP refuses: they must end in the dead letters
FAULTS = {"drop": 0.10, "error": 0.05, "throttle": 0.05, "slow": 0.02}


def _run_with_kills(outbox, workers, env, n_total: int) -> None:  # type: ignore[no-untyped-def]
    """Start the worker, kill -9 it when a quarter, half and three quarters of the POs are
    delivered (restarting it each time), then let it finish and stop it."""
    worker = workers(env)
    worker.start()
    for share in (0.25, 0.5, 0.75):
        target = int(n_total * share)
        wait_for(
            lambda t=target: outbox.counts().get("delivered", 0) >= t,
            240,
            f"{target} deliveries",
        )
        worker.kill9()
        worker.start()
    wait_for(lambda: not outbox.counts().get("pending"), 300, "an empty outbox")
    assert worker.stop() == 0, worker.log.read_text()[-2000:]
    assert worker.starts == 4


def _check_exactly_once(db_url, erp_orders, delivered_ids, poison_ids) -> None:  # type: ignore[no-untyped-def]
    from replenishment.erp.outbox import Outbox
    from replenishment.orders import OrderStore

    store, outbox = OrderStore(db_url), Outbox(db_url)
    deliveries = outbox.deliveries()
    assert set(deliveries["status"]) <= {"delivered", "dead"}, deliveries["status"].value_counts()
    dead = deliveries.filter(pl.col("status") == "dead")
    assert set(dead["po_id"]) == set(poison_ids)
    assert all(r and ("422" in r or "BAD1" in r) for r in dead["dead_reason"])
    delivered = set(deliveries.filter(pl.col("status") == "delivered")["po_id"])
    assert delivered == set(delivered_ids) - set(poison_ids)

    per_po = Counter(o["po_id"] for o in erp_orders)
    doubled = {k: n for k, n in per_po.items() if n > 1}
    assert not doubled, f"POs in the ERP more than once: {doubled}"
    assert set(per_po) == delivered, "the ERP holds other POs than those delivered"

    ours = defaultdict(dict)
    for r in store.po_lines().iter_rows(named=True):
        ours[r["po_id"]][r["sku_id"]] = float(r["quantity"])
    for order in erp_orders:
        theirs = {x["sku_id"]: float(x["product_qty"]) for x in order["lines"]}
        assert theirs == ours[order["po_id"]], order["po_id"]

    heads = store.purchase_orders()
    status = dict(zip(heads["po_id"], heads["status"], strict=True))
    assert all(status[i] == "exported" for i in delivered)
    assert all(status[i] == "approved" for i in poison_ids)  # still to fix, never lost


def _check_faults_happened(fake) -> None:  # type: ignore[no-untyped-def]
    faults = Counter(r["fault"] for r in fake.requests())
    for name in FAULTS:
        assert faults[name] >= 10, faults


def test_webhook_delivers_each_po_exactly_once_through_faults_and_kills(
    db_url, approved_pos, fake_erp, workers, worker_env
) -> None:
    from replenishment.erp.outbox import Outbox

    ids = approved_pos(N_POS, poison=POISON)
    poison = ids[:POISON]
    fake_erp.set_faults(**FAULTS, retry_after=1, slow_seconds=1.5, reject_skus=["BAD1"])
    env = worker_env | {
        "REPLEN_ERP_ADAPTER": "webhook",
        "REPLEN_ERP_URL": fake_erp.webhook_url,
        "REPLEN_ERP_HMAC_KEY": fake_erp.secret,
    }
    outbox = Outbox(db_url)
    _run_with_kills(outbox, workers, env, N_POS)
    _check_exactly_once(db_url, fake_erp.orders(), ids, poison)
    _check_faults_happened(fake_erp)
    # Retry-After honoured: after a 429, that key came back no sooner than it said.
    by_key = defaultdict(list)
    for r in fake_erp.requests():
        by_key[r["key"]].append(r)
    gaps = [
        later["at"] - r["at"]
        for reqs in by_key.values()
        for r, later in itertools.pairwise(reqs)
        if r["fault"] == "throttle"
    ]
    assert gaps and min(gaps) >= 0.95, sorted(gaps)[:5]


def test_odoo_delivers_each_po_exactly_once_through_faults_and_kills(
    db_url, approved_pos, fake_erp, workers, worker_env
) -> None:
    from replenishment.erp.outbox import Outbox

    ids = approved_pos(N_POS, poison=POISON)
    poison = ids[:POISON]
    fake_erp.seed(
        partners=[{"ref": "A", "name": "Supplier A"}],
        products=[{"default_code": f"K{j:03d}"} for j in range(20)],  # no BAD1
    )
    fake_erp.set_faults(**FAULTS, retry_after=1, slow_seconds=1.5)
    db, user, key = fake_erp.odoo
    env = worker_env | {
        "REPLEN_ERP_ADAPTER": "odoo",
        "REPLEN_ERP_URL": fake_erp.url,
        "REPLEN_ERP_ODOO_DB": db,
        "REPLEN_ERP_ODOO_USER": user,
        "REPLEN_ERP_ODOO_API_KEY": key,
    }
    outbox = Outbox(db_url)
    _run_with_kills(outbox, workers, env, N_POS)
    orders = fake_erp.orders()
    assert all(o["origin"] == f"REPLEN-{o['po_id']}" for o in orders)
    _check_exactly_once(db_url, orders, ids, poison)
    _check_faults_happened(fake_erp)
