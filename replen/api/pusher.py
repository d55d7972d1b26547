"""Background pusher: fresh velocity of acknowledged keys to Feast, batched and serialised.

Requests are acknowledged once durable in the lake; this thread then recomputes velocity of
the touched store×SKUs from the lake and pushes it online. Keys arriving while a push runs
are merged into the next push, so the online store never falls far behind under load.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import polars as pl

from jobs.refresh import push_velocity
from jobs.runtime import Runtime

__all__ = ["VelocityPusher"]

log = logging.getLogger(__name__)


class VelocityPusher:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._queue: queue.Queue[tuple[pl.DataFrame, float] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="velocity-pusher", daemon=True)
        self.pushed = 0
        self.last_visible_at: float | None = None
        self.latencies: list[float] = []  # seconds from submit to online visibility

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, keys: pl.DataFrame) -> None:
        self._queue.put((keys, time.perf_counter()))

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every submitted key is pushed (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while (not self._queue.empty() or self._busy) and time.monotonic() < deadline:
            time.sleep(0.01)

    _busy = False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._busy = True
            batch = [item]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            keys = pl.concat([k for k, _ in batch]).unique()
            try:
                self.pushed += push_velocity(self.runtime, keys)
                done = time.perf_counter()
                self.latencies.extend(done - t for _, t in batch)
                self.last_visible_at = done
            except Exception:  # keep serving: the lake is the truth, Feast can be rebuilt
                log.exception("velocity push failed for %d keys", keys.height)
            finally:
                self._busy = False
