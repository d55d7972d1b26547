"""The velocity pusher process: follows the lake and pushes fresh velocity to Feast.

Requests are acknowledged once durable in the lake; a separate process notices the new
batch (its manifest), folds it into its incremental state and pushes the touched
store×SKUs' velocity online (:mod:`jobs.velocity`). A process, not a thread, so that the
push never competes with request handling for the GIL; one per deployment, whatever the
number of API workers (`replen serve` starts it, or `replen push-velocity` runs it alone).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from typing import Any

from replen.settings import Settings

__all__ = ["VelocityPusher", "pusher_main"]


def _die_with(parent: int) -> None:
    """Exit as soon as the server that started this process is gone (even by SIGKILL,
    which runs no cleanup there): a pusher never outlives its server. The checkpoint makes
    the next pusher resume where this one stopped."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def pusher_main(settings: dict[str, Any], parent: int | None = None) -> None:
    """Entry point of the pusher process (also `replen push-velocity`): runs until SIGTERM
    or SIGINT, then finishes its round and checkpoints. With ``parent`` (a server's pid),
    it also exits when that process is gone."""
    if parent is not None:
        threading.Thread(target=_die_with, args=(parent,), name="parent-watch", daemon=True).start()
    from jobs.runtime import Runtime
    from jobs.velocity import run_pusher

    # A signal, not a shared Event: an Event's waiter killed in the middle of a wait would
    # leave its lock held and hang the parent's set().
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run_pusher(Runtime(Settings(**settings)), stop)


class VelocityPusher:
    """Runs the pusher process (it reports in ``<feast_dir>/pusher.json``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ctx = mp.get_context("spawn")
        self._process = ctx.Process(
            target=pusher_main,
            args=(settings.model_dump(), os.getpid()),
            name="velocity-pusher",
            daemon=True,
        )

    def start(self) -> None:
        self._process.start()

    def stop(self, grace: float = 5.0) -> None:
        """Ask the pusher to finish its round; terminate it after ``grace`` seconds. Safe
        at any point: the next pusher resumes from the last checkpoint and folds every
        batch not yet in it (nothing acknowledged is lost, nothing counted twice)."""
        if self._process.is_alive():
            self._process.terminate()  # SIGTERM: the pusher finishes its round
        self._process.join(grace)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(30)

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every POS batch committed so far is pushed; False on timeout."""
        from jobs.runtime import Runtime
        from jobs.velocity import wait_pushed

        return wait_pushed(Runtime(self.settings), timeout, alive=self._process.is_alive)
