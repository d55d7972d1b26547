"""Velocity to the online store as batches commit: fold new lake batches, push touched keys.

The pusher (one process per deployment) follows the lake's manifests, so every writer —
HTTP workers, file ingest, the POS stream consumer — is seen alike. Its cost per push is in
proportion to the new batches and the keys they touch, not to the lake: the state it needs
is kept incrementally (:class:`features.velocity_state.VelocityState`) and checkpointed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from features.velocity_state import VelocityState
from jobs.runtime import Runtime

__all__ = ["PUSH_LOCK", "SyncReport", "VelocitySync", "read_stats", "run_pusher", "wait_pushed"]

log = logging.getLogger(__name__)

# Feast's SQLite online store takes one writer at a time (threads of one process).
PUSH_LOCK = threading.Lock()
_COLUMNS = ["store_id", "sku_id", "sold_at", "quantity"]
_FOLD_ROWS = 2_000_000  # lines read per fold at most (one batch may exceed it alone)


def _bounded(batches: list[dict[str, Any]], rows: int) -> Iterator[list[dict[str, Any]]]:
    """Consecutive groups of batches holding at most ``rows`` accepted lines each."""
    group: list[dict[str, Any]] = []
    size = 0
    for b in batches:
        n = int(b["summary"].get("accepted", 0))
        if group and size + n > rows:
            yield group
            group, size = [], 0
        group.append(b)
        size += n
    if group:
        yield group


@dataclass
class SyncReport:
    batches: int = 0  # batches folded by this sync
    pushed: int = 0  # rows written to the online store
    full: bool = False  # every key pushed (the as-of day moved)
    committed_at: list[datetime] = field(default_factory=list)  # of the folded batches


class VelocitySync:
    """The incremental velocity state of one process and the pushes it drives."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.path = rt.settings.feast_dir / "velocity_state.parquet"
        self.state = VelocityState.load(self.path)
        self._saved_at = time.monotonic()
        self._seen = 0  # lake arrivals already looked at
        self._saving: threading.Thread | None = None  # a checkpoint being written

    def sync(self, *, cheap: bool = False) -> SyncReport:
        """Fold the batches committed since the last sync and push what changed."""
        arrived = self.rt.lake.pos_arrivals(self._seen, cheap=cheap)
        self._seen += len(arrived)
        if any(b["kind"] == "void" and b["batch_id"] not in self.state.folded for b in arrived):
            return self._rebuild()
        new = [b for b in arrived if b["kind"] == "pos" and b["batch_id"] not in self.state.folded]
        report = SyncReport(batches=len(new))
        if not new and self.state.pushed_as_of == self.state.newest:
            return report
        touched_parts = []
        for group in _bounded(new, _FOLD_ROWS):  # a first sync of a big lake: bounded memory
            ids = [str(b["batch_id"]) for b in group]
            touched_parts.append(self.state.fold(self.rt.lake.read_batches(ids, _COLUMNS), ids))
        touched = pl.concat(touched_parts).unique() if touched_parts else None
        report.committed_at = [datetime.fromisoformat(str(b["committed_at"])) for b in new]
        if self.state.newest is None:
            return report
        report.full = self.state.pushed_as_of != self.state.newest or touched is None
        rows = self.state.velocity(None if report.full else touched)
        with PUSH_LOCK:
            self.rt.features.apply_once()
            report.pushed = self.rt.features.push_online(rows)
        self.state.pushed_as_of = self.state.newest
        return report

    def _rebuild(self) -> SyncReport:
        """A correction voided events: fold every batch again without them and push every
        key (corrections are rare; the lake is the truth)."""
        lake = self.rt.lake
        batches = lake.pos_batches()
        voided = lake.voided_ids()
        before = self.state.velocity(None).select("store_id", "sku_id")
        self.state = VelocityState()
        for group in _bounded(batches, _FOLD_ROWS):
            ids = [str(b["batch_id"]) for b in group]
            events = lake.read_batches(ids, [*_COLUMNS, "event_id"])
            kept = events.join(voided, on="event_id", how="anti").select(_COLUMNS)
            self.state.fold(kept, ids)
        self.state.folded |= {str(v["batch_id"]) for v in lake.voids()}
        report = SyncReport(batches=0, full=True)
        rows = self.state.velocity(None)
        gone = before.join(rows.select("store_id", "sku_id"), on=["store_id", "sku_id"], how="anti")
        if gone.height and self.state.newest is not None:
            # every sale of these store×SKUs was voided: nothing sold in the window
            rows = pl.concat(
                [
                    rows,
                    gone.with_columns(
                        pl.lit(self.state.newest).alias("as_of"),
                        *[pl.lit(0.0).alias(c) for c in ("units_1d", "units_7d", "units_28d")],
                        pl.lit(None).alias("days_since_last_sale"),
                    ).cast(rows.schema),  # type: ignore[arg-type]
                ]
            )
        if rows.is_empty():
            return report
        with PUSH_LOCK:
            self.rt.features.apply_once()
            report.pushed = self.rt.features.push_online(rows)
        self.state.pushed_as_of = self.state.newest
        return report

    def save(self, every: float = 0.0, *, background: bool = False) -> None:
        """Checkpoint the state (at most once per ``every`` seconds). ``background`` writes a
        snapshot of it in a thread, so that pushes go on meanwhile (a big lake's state takes
        seconds to compact and write); skipped while the previous one is still writing."""
        if time.monotonic() - self._saved_at < every:
            return
        if background and self._saving is not None and self._saving.is_alive():
            return
        self.wait_saved()
        if background:
            snapshot, path = self.state.snapshot(), self.path
            self._saving = threading.Thread(
                target=_checkpoint, args=(snapshot, path), name="velocity-checkpoint", daemon=True
            )
            self._saving.start()
        else:
            self.state.save(self.path)
        self._saved_at = time.monotonic()

    def wait_saved(self) -> None:
        """Wait for a checkpoint being written in the background."""
        if self._saving is not None:
            self._saving.join()
            self._saving = None


def run_pusher(
    rt: Runtime,
    stop: threading.Event | Any,
    *,
    poll: float = 0.02,
    checkpoint_every: float = 30.0,
) -> None:
    """Push velocity as batches commit until ``stop`` is set; checkpoint on the way out.

    Writes ``<feast_dir>/pusher.json``: folded batches, pushed rows, the recent commit →
    online latencies (seconds) and errors. A failed push is retried on the next round
    (the lake is the truth; the online store is a cache).
    """
    stats_path = rt.settings.feast_dir / "pusher.json"
    sync = VelocitySync(rt)
    latencies: deque[float] = deque(maxlen=20_000)
    errors: deque[str] = deque(maxlen=20)
    totals = {"samples": 0, "pushed_rows": 0, "full_pushes": 0}
    _write_stats(stats_path, sync, latencies, errors, totals)
    while not stop.is_set():
        try:
            report = sync.sync(cheap=True)
        except Exception as exc:  # keep following the lake; the next round retries
            log.exception("velocity push failed")
            errors.append(repr(exc))
            sync.wait_saved()
            sync = VelocitySync(rt)  # reload the last checkpoint: it folded nothing twice
            _write_stats(stats_path, sync, latencies, errors, totals)
            stop.wait(1.0)
            continue
        if report.batches or report.pushed:
            done = datetime.now(UTC)
            latencies.extend((done - t).total_seconds() for t in report.committed_at)
            totals["samples"] += len(report.committed_at)
            totals["pushed_rows"] += report.pushed
            totals["full_pushes"] += int(report.full)
            _write_stats(stats_path, sync, latencies, errors, totals)
            sync.save(every=checkpoint_every, background=True)
        else:
            stop.wait(poll)
    sync.save()
    _write_stats(stats_path, sync, latencies, errors, totals)


def _checkpoint(state: VelocityState, path: Path) -> None:
    try:
        state.save(path)
    except Exception:  # the next checkpoint (or the one on the way out) tries again
        log.exception("velocity checkpoint failed")


def _write_stats(
    path: Path,
    sync: VelocitySync,
    latencies: deque[float],
    errors: deque[str],
    totals: dict[str, int],
) -> None:
    stats = {
        "pid": os.getpid(),
        "folded_batches": len(sync.state.folded),
        "as_of": str(sync.state.newest) if sync.state.newest else None,
        "latencies": list(latencies),
        "errors": list(errors),
        **totals,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(stats, handle)
    os.replace(tmp, path)


def read_stats(rt: Runtime) -> dict[str, Any]:
    """The pusher's last published statistics (empty before it first ran)."""
    path = rt.settings.feast_dir / "pusher.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


def wait_pushed(
    rt: Runtime, timeout: float = 60.0, alive: Callable[[], bool] | None = None
) -> bool:
    """Wait until the pusher has pushed every POS batch committed so far (False on
    timeout, or at once when ``alive`` says the pusher is gone)."""
    committed = len(rt.lake.pos_batches())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_stats(rt).get("folded_batches", -1) >= committed:
            return True
        if alive is not None and not alive():
            return False
        time.sleep(0.01)
    return False
