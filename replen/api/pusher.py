"""Background pusher: fresh velocity of acknowledged keys to Feast, batched and serialised.

Requests are acknowledged once durable in the lake; a separate process then recomputes the
touched store×SKUs' velocity from the lake and pushes it online. A process, not a thread,
so that the push (polars + Feast) never competes with request handling for the GIL. Keys
that arrive while a push runs are merged into the next push, so the online store never
falls far behind under load.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from typing import Any

import polars as pl

from replen.settings import Settings

__all__ = ["VelocityPusher"]

log = logging.getLogger(__name__)


def _die_with(parent: int) -> None:
    """Exit as soon as the server that started this process is gone (even by SIGKILL,
    which runs no cleanup there): a pusher never outlives its server."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _worker(settings: dict[str, Any], jobs: Any, done: Any, parent: int) -> None:
    """Child process: merge pending key batches, push, report which submissions are live."""
    threading.Thread(target=_die_with, args=(parent,), name="parent-watch", daemon=True).start()
    from jobs.refresh import push_velocity
    from jobs.runtime import Runtime

    runtime = Runtime(Settings(**settings))
    while True:
        item = jobs.get()
        if item is None:
            return
        batch = [item]
        while True:
            try:
                more = jobs.get_nowait()
            except queue.Empty:
                break
            if more is None:
                jobs.put(None)
                break
            batch.append(more)
        keys = pl.DataFrame(
            {
                "store_id": [s for rows, _ in batch for s in rows[0]],
                "sku_id": [k for rows, _ in batch for k in rows[1]],
            }
        ).unique()
        try:
            pushed = push_velocity(runtime, keys)
            done.put((pushed, [t for _, t in batch], time.monotonic(), None))
        except Exception as exc:  # keep serving: the lake is the truth, Feast can be rebuilt
            done.put((0, [t for _, t in batch], time.monotonic(), repr(exc)))


class VelocityPusher:
    """Runs the push worker process and tracks submit → online-visible latencies."""

    def __init__(self, settings: Settings) -> None:
        ctx = mp.get_context("spawn")
        self._jobs = ctx.Queue()
        self._done = ctx.Queue()
        self._process = ctx.Process(
            target=_worker,
            args=(settings.model_dump(), self._jobs, self._done, os.getpid()),
            name="velocity-pusher",
            daemon=True,
        )
        self._collector = threading.Thread(target=self._collect, daemon=True)
        self._pending = 0
        self._lock = threading.Lock()
        self.pushed = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def start(self) -> None:
        self._process.start()
        self._collector.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the worker; call :meth:`drain` first so that no push is pending. A worker
        still starting up (imports take seconds) is terminated rather than waited for: the
        lake is the truth and the online store is a cache of it."""
        self._jobs.put(None)
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout)
        self._done.put(None)

    def submit(self, keys: pl.DataFrame) -> None:
        with self._lock:
            self._pending += 1
        self._jobs.put(((keys["store_id"].to_list(), keys["sku_id"].to_list()), time.monotonic()))

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every submitted batch is pushed (for tests, benchmarks, shutdown);
        False if some were still pending after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._pending

    def _collect(self) -> None:
        while True:
            item = self._done.get()
            if item is None:
                return
            pushed, submitted, finished, error = item
            with self._lock:
                self.pushed += pushed
                self.latencies.extend(finished - t for t in submitted)
                self._pending -= len(submitted)
            if error:
                self.errors.append(error)
                log.error("velocity push failed: %s", error)
