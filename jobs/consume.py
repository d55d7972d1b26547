"""The POS stream consumer: read a batch, commit it to the lake, then acknowledge it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from features.streams import PosSource, messages_frame
from jobs.refresh import IngestSummary, ingest_pos
from jobs.runtime import Runtime

__all__ = ["consume_pos"]


def consume_pos(
    rt: Runtime,
    source: PosSource,
    *,
    batch_max: int = 5000,
    block_ms: int = 1000,
    stop: threading.Event | None = None,
    until_idle: float | None = None,
    on_batch: Callable[[IngestSummary], None] | None = None,
) -> IngestSummary:
    """Ingest streamed POS events until ``stop`` is set (or the stream stayed empty for
    ``until_idle`` seconds); returns the totals.

    Each read is validated and committed to the lake as one batch, and only then
    acknowledged: a crash before the acknowledgement redelivers the batch, which the lake
    counts as duplicates (idempotent by ``event_id``). Rejected lines are quarantined and
    acknowledged too: they are kept, with the rule they broke, not retried forever. The
    velocity pusher sees the committed batch in the lake like any other.
    """
    totals = IngestSummary()
    idle_since = time.monotonic()
    while stop is None or not stop.is_set():
        messages = source.read(batch_max, block_ms)
        if not messages:
            if until_idle is not None and time.monotonic() - idle_since >= until_idle:
                break
            continue
        batch = ingest_pos(rt, messages_frame(messages), push=False, chunk_rows=len(messages))
        source.ack(messages)  # after the commit: never before
        totals.merge(batch)
        if on_batch is not None:
            on_batch(batch)
        idle_since = time.monotonic()
    return totals
