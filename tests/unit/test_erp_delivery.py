"""Adapters say accepted, retry later (when) or never; the outbox leases, backs off,
dead-letters, and marks a PO exported only when the ERP accepted it."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest

from replenishment.erp.adapters import (
    DeliveryFailed,
    FileAdapter,
    WebhookAdapter,
    retry_after_seconds,
    sign,
)
from replenishment.erp.outbox import Outbox, RetryPolicy, backoff

DOC = {"po_id": 7, "revision": 1, "lines": [{"sku_id": "a", "quantity": 6}]}


def _webhook(handler) -> WebhookAdapter:  # type: ignore[no-untyped-def]
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return WebhookAdapter("http://erp.test/po", "s3cret", client=client)


def test_webhook_signs_the_body_and_sends_the_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"erp_po_number": "FE-1"})

    assert _webhook(handler).send(DOC, "replen-po-7-r1").erp_ref == "FE-1"
    req = seen[0]
    assert req.headers["Idempotency-Key"] == "replen-po-7-r1"
    stamp = req.headers["X-Replen-Timestamp"]
    assert req.headers["X-Replen-Signature"] == sign("s3cret", stamp, req.content)
    assert json.loads(req.content) == DOC


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [
        (429, {"Retry-After": "7"}, False, 7.0),
        (503, {}, False, None),
        (500, {}, False, None),
        (400, {}, True, None),
        (409, {}, True, None),
        (422, {}, True, None),
    ],
)
def test_webhook_answers_are_temporary_or_permanent(
    status, headers, permanent, retry_after
) -> None:
    adapter = _webhook(lambda r: httpx.Response(status, headers=headers, text="nope"))
    with pytest.raises(DeliveryFailed) as info:
        adapter.send(DOC, "k")
    assert (info.value.permanent, info.value.retry_after, info.value.status) == (
        permanent,
        retry_after,
        status,
    )
    assert f"HTTP {status}" in info.value.reason


def test_no_answer_is_temporary_the_erp_may_have_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(DeliveryFailed, match="timed out") as info:
        _webhook(handler).send(DOC, "k")
    assert not info.value.permanent


def test_retry_after_may_be_an_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Mon, 01 Jan 2024 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon", now) is None


def test_backoff_grows_exponentially_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=30.0)
    rng = random.Random(0)
    for attempt, raw in ((1, 1.0), (2, 2.0), (4, 8.0), (9, 30.0)):
        waits = [backoff(attempt, policy, rng) for _ in range(200)]
        assert raw * 0.5 <= min(waits) and max(waits) <= raw
        assert max(waits) - min(waits) > raw * 0.3  # jitter spreads retries


def test_file_drop_writes_one_file_per_version_and_never_overwrites(tmp_path) -> None:
    adapter = FileAdapter(tmp_path / "erp")
    assert adapter.send(DOC, "replen-po-7-r1").erp_ref == "replen-po-7-r1.json"
    assert adapter.send(DOC, "replen-po-7-r1").erp_ref  # a resend after a crash: same file
    with pytest.raises(DeliveryFailed, match="never overwritten") as info:
        adapter.send({**DOC, "lines": []}, "replen-po-7-r1")
    assert info.value.permanent
    adapter.send({**DOC, "revision": 2}, "replen-po-7-r2")
    assert sorted(p.name for p in (tmp_path / "erp").iterdir()) == [
        "replen-po-7-r1.json",
        "replen-po-7-r2.json",
    ]
    assert json.loads((tmp_path / "erp" / "replen-po-7-r1.json").read_text()) == DOC


# Outbox ------------------------------------------------------------------------------------
POLICY = RetryPolicy(base_seconds=1.0, cap_seconds=60.0, max_attempts=3, lease_seconds=60.0)


@pytest.fixture()
def approved(db_url):
    from test_orders import DAY, _suggestion

    from replenishment.orders import OrderStore

    store = OrderStore(db_url)
    store.replace_suggestions(DAY, _suggestion())
    ids = sorted(store.purchase_orders(DAY)["po_id"].to_list())
    store.approve_many(ids, "ana")
    return store, Outbox(db_url), ids


def _expire_leases(outbox: Outbox) -> None:
    from sqlalchemy import update

    from kernel.sql import write_session
    from replenishment.models import Delivery

    with write_session(outbox.engine) as session:
        session.execute(
            update(Delivery).values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_a_claimed_delivery_is_leased_to_one_worker_until_its_lease_ends(approved) -> None:
    _, outbox, ids = approved
    claims = outbox.claim("w1", 10, POLICY)
    assert sorted(c.po_id for c in claims) == ids
    assert all(c.payload["idempotency_key"] == c.key == f"replen-po-{c.po_id}-r1" for c in claims)
    assert outbox.claim("w2", 10, POLICY) == []
    _expire_leases(outbox)  # w1 died
    again = outbox.claim("w2", 10, POLICY)
    assert [c.payload for c in again] == [c.payload for c in claims]  # the same bytes


def test_a_po_is_exported_only_when_the_erp_accepted_it(approved) -> None:
    from replenishment.erp.adapters import Accepted

    store, outbox, _ids = approved
    first, second = outbox.claim("w1", 10, POLICY)
    counts = outbox.record(
        "w1",
        [(first, Accepted("FE-9")), (second, DeliveryFailed("HTTP 503", status=503))],
        POLICY,
        "webhook",
        commits_in_erp=True,
    )
    assert counts == {"delivered": 1, "retried": 1, "dead": 0, "lost_lease": 0}
    heads = store.purchase_orders().sort("po_id")
    status = dict(zip(heads["po_id"], heads["status"], strict=True))
    assert status == {first.po_id: "exported", second.po_id: "approved"}
    assert heads.filter(heads["po_id"] == first.po_id)["erp_ref"][0] == "FE-9"
    assert store.history(first.po_id)[-1]["action"] == "exported"


def test_a_temporary_failure_waits_at_least_what_retry_after_says(approved) -> None:
    _, outbox, _ = approved
    claims = outbox.claim("w1", 10, POLICY)
    before = datetime.now(UTC)
    outbox.record(
        "w1",
        [(c, DeliveryFailed("429", retry_after=30.0)) for c in claims],
        POLICY,
        "webhook",
        True,
        random.Random(1),
    )
    rows = outbox.deliveries()
    assert set(rows["status"]) == {"pending"} and set(rows["attempts"]) == {1}
    assert all(t >= before + timedelta(seconds=30) for t in rows["next_attempt_at"])
    assert outbox.claim("w1", 10, POLICY) == []


def test_a_permanent_refusal_is_a_dead_letter_with_its_reason_and_can_be_retried(approved) -> None:
    store, outbox, _ = approved
    claim = outbox.claim("w1", 1, POLICY)[0]
    refusal = DeliveryFailed("HTTP 422: unknown article a", permanent=True, status=422)
    outbox.record("w1", [(claim, refusal)], POLICY, "webhook", True)
    dead = outbox.deliveries("dead")
    assert dead.select("po_id", "dead_reason").rows() == [(claim.po_id, refusal.reason)]
    assert store.history(claim.po_id)[-1]["action"] == "delivery_failed"
    heads = store.purchase_orders()
    assert heads.filter(heads["po_id"] == claim.po_id)["status"][0] == "approved"  # not lost
    assert outbox.retry(claim.po_id, "ops") == claim.key
    again = [c for c in outbox.claim("w1", 10, POLICY) if c.po_id == claim.po_id]
    assert again[0].payload == claim.payload and again[0].attempts == 0


def test_repeated_temporary_failures_give_up_after_max_attempts(approved) -> None:
    _, outbox, _ = approved
    for _ in range(POLICY.max_attempts):
        _expire_leases(outbox)
        from sqlalchemy import update

        from kernel.sql import write_session
        from replenishment.models import Delivery

        with write_session(outbox.engine) as session:  # due now
            session.execute(update(Delivery).values(next_attempt_at=datetime.now(UTC)))
        claims = outbox.claim("w1", 10, POLICY)
        outbox.record("w1", [(c, DeliveryFailed("HTTP 500")) for c in claims], POLICY, "w", True)
    dead = outbox.deliveries("dead")
    assert dead.height == 2
    assert all(
        r.startswith("gave up after 3 attempts; last: HTTP 500") for r in dead["dead_reason"]
    )


def test_an_answer_after_the_lease_was_lost_is_dropped(approved) -> None:
    from replenishment.erp.adapters import Accepted

    _store, outbox, _ = approved
    mine = outbox.claim("w1", 1, POLICY)[0]
    _expire_leases(outbox)
    theirs = [c for c in outbox.claim("w2", 10, POLICY) if c.id == mine.id]
    assert theirs  # w2 holds it now
    counts = outbox.record("w1", [(mine, Accepted("FE-1"))], POLICY, "webhook", True)
    assert counts["lost_lease"] == 1
    assert outbox.deliveries().filter(pl.col("delivery_id") == mine.id)["status"][0] == "pending"
