"""The velocity pusher process: follows the lake and pushes fresh velocity to Feast.

Requests are acknowledged once durable in the lake; a separate process notices the new
batch (its manifest), folds it into its incremental state and pushes the touched
store×SKUs' velocity online (:mod:`jobs.velocity`). A process, not a thread, so that the
push never competes with request handling for the GIL; one per deployment, whatever the
number of API workers (`replen serve` starts it, or `replen push-velocity` runs it alone).
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

from replen.settings import Settings

__all__ = ["VelocityPusher", "pusher_main"]


def pusher_main(settings: dict[str, Any], stop: Any) -> None:
    """Entry point of the pusher process (also used by `replen push-velocity`)."""
    from jobs.runtime import Runtime
    from jobs.velocity import run_pusher

    run_pusher(Runtime(Settings(**settings)), stop)


class VelocityPusher:
    """Runs the pusher process (it reports in ``<feast_dir>/pusher.json``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._process = ctx.Process(
            target=pusher_main,
            args=(settings.model_dump(), self._stop),
            name="velocity-pusher",
            daemon=True,
        )

    def start(self) -> None:
        self._process.start()

    def stop(self, grace: float = 5.0) -> None:
        """Ask the pusher to finish its round; terminate it after ``grace`` seconds. Safe
        at any point: the next pusher resumes from the last checkpoint and folds every
        batch not yet in it (nothing acknowledged is lost, nothing counted twice)."""
        self._stop.set()
        self._process.join(grace)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(30)

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every POS batch committed so far is pushed; False on timeout."""
        from jobs.runtime import Runtime
        from jobs.velocity import wait_pushed

        return wait_pushed(Runtime(self.settings), timeout, alive=self._process.is_alive)
