"""PO transitions are compare-and-set in the database: of two processes approving and rejecting
the same PO at the same moment, exactly one is told it succeeded, and the PO shows its change."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

import pytest
from erp_helpers import DAY, suggestion_of

PAIRS = 20


def _act(url: str, action: str, ids: list[int], barrier, results) -> None:  # type: ignore[no-untyped-def]
    from replenishment.orders import OrderError, OrderStore

    store = OrderStore(url)
    for po_id in ids:
        barrier.wait(timeout=60)  # both processes go for this PO at once
        try:
            # Each acts on the suggestion it saw (a reject of a suggestion must not reject
            # a PO someone just approved, nor the other way round).
            if action == "approve":
                store.transition(po_id, "approved", "ana", expect="suggested")
            else:
                store.transition(po_id, "rejected", "bob", reason="duplicate", expect="suggested")
            results.put((po_id, action, "ok"))
        except OrderError as exc:
            results.put((po_id, action, f"conflict: {exc}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def race_url(request, db_url) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return db_url
    import os

    from sqlalchemy import create_engine, text

    from replen.db import upgrade

    url = os.environ.get("REPLEN_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("REPLEN_TEST_POSTGRES_URL is not set (no PostgreSQL server to test on)")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)
    return url


def test_concurrent_approve_and_reject_of_one_po_let_exactly_one_win(race_url) -> None:
    db_url = race_url
    from replenishment.erp.outbox import Outbox
    from replenishment.orders import OrderStore

    store = OrderStore(db_url)
    store.replace_suggestions(DAY, suggestion_of(PAIRS))
    ids = store.purchase_orders(DAY)["po_id"].to_list()
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_act, args=(db_url, action, ids, barrier, results))
        for action in ("approve", "reject")
    ]
    for p in procs:
        p.start()
    try:
        got = [results.get(timeout=120) for _ in range(2 * PAIRS)]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    wins = Counter(po for po, _, outcome in got if outcome == "ok")
    assert all(wins[po] == 1 for po in ids), [o for o in got if o[0] in ids]
    losers = [o for o in got if o[2] != "ok"]
    assert len(losers) == PAIRS
    assert all("changed meanwhile: it is now" in o[2] for o in losers), losers
    winner = {po: action for po, action, outcome in got if outcome == "ok"}
    heads = store.purchase_orders(DAY)
    status = dict(zip(heads["po_id"], heads["status"], strict=True))
    assert all(status[po] == ("approved" if winner[po] == "approve" else "rejected") for po in ids)
    delivered = set(Outbox(db_url).deliveries()["po_id"])
    assert delivered == {po for po in ids if winner[po] == "approve"}
    actions = Counter((a["po_id"], a["action"]) for a in store.audit() if a["po_id"])
    assert all(actions[(po, "approved")] + actions[(po, "rejected")] == 1 for po in ids)
    if len(set(winner.values())) < 2:  # pragma: no cover - a heads-up, not the spec
        pytest.skip("one side won every pair; the race was not exercised both ways")
