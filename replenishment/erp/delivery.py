"""The delivery worker: claim due PO versions, send them through the adapter (a few at a
time), record the answers; one pass, or a loop until told to stop."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from kernel.sql import now_utc
from replenishment.erp.adapters import Accepted, Adapter, DeliveryFailed
from replenishment.erp.outbox import Claimed, Outbox, RetryPolicy

__all__ = ["DeliveryReport", "deliver_pass", "run_loop", "worker_id"]


@dataclass
class DeliveryReport:
    """What one pass (or loop) did; ``attempts = delivered + retried + dead + lost_lease``."""

    attempts: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    lost_lease: int = 0
    passes: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, counts: dict[str, int], outcomes: list[Accepted | DeliveryFailed]) -> None:
        self.attempts += len(outcomes)
        for name in ("delivered", "retried", "dead", "lost_lease"):
            setattr(self, name, getattr(self, name) + counts.get(name, 0))
        for o in outcomes:
            if isinstance(o, DeliveryFailed):
                kind = f"HTTP {o.status}" if o.status else o.reason.split(":")[0][:60]
                self.errors[kind] = self.errors.get(kind, 0) + 1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _send(adapter: Adapter, claim: Claimed) -> Accepted | DeliveryFailed:
    try:
        return adapter.send(claim.payload, claim.key)
    except DeliveryFailed as failed:
        return failed


def deliver_pass(
    outbox: Outbox,
    adapter: Adapter,
    policy: RetryPolicy,
    *,
    owner: str | None = None,
    batch_size: int = 50,
    concurrency: int = 4,
    stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[DeliveryReport], None] | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Deliver everything due now, once: failures are rescheduled (not retried within this
    pass), so a pass always ends."""
    owner = owner or worker_id()
    report = DeliveryReport(passes=1)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="erp") as pool:
        while not stop():
            batch = outbox.claim(owner, batch_size, policy)
            if not batch:
                break
            outcomes = list(pool.map(lambda c: _send(adapter, c), batch))
            counts = outbox.record(
                owner,
                list(zip(batch, outcomes, strict=True)),
                policy,
                adapter.name,
                adapter.commits_in_erp,
                rng,
            )
            report.add(counts, outcomes)
            if on_batch is not None:
                on_batch(report)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def run_loop(
    outbox: Outbox,
    adapter: Adapter,
    policy: RetryPolicy,
    *,
    stop: threading.Event,
    poll_seconds: float = 5.0,
    batch_size: int = 50,
    concurrency: int = 4,
    on_pass: Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Deliver until ``stop`` is set: a pass, then wait for the next due delivery (at
    most ``poll_seconds``, so new approvals are picked up)."""
    owner = worker_id()
    total = DeliveryReport(passes=0)
    while not stop.is_set():
        report = deliver_pass(
            outbox,
            adapter,
            policy,
            owner=owner,
            batch_size=batch_size,
            concurrency=concurrency,
            stop=stop.is_set,
        )
        for name in ("attempts", "delivered", "retried", "dead", "lost_lease", "passes"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.seconds += report.seconds
        if on_pass is not None and report.attempts:
            on_pass(report)
        due = outbox.next_due()
        wait = poll_seconds
        if due is not None:
            wait = min(poll_seconds, max((due - now_utc()).total_seconds(), 0.01))
        stop.wait(wait)
    return total
