"""Services of a multi-process deployment: the velocity pusher and the POS stream consumer."""

from __future__ import annotations

import signal
import threading

from replen.cli._common import app, console, load_settings, quiet_libraries


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or Ctrl-C: long-running services finish their round, exit."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@app.command("push-velocity")
def push_velocity_cmd() -> None:
    """Follow the lake and push fresh velocity to the Feast online store (one per deployment).

    Runs until SIGTERM or Ctrl-C; start the API with `replen serve --no-pusher` then.
    """
    quiet_libraries()
    from replen.api.pusher import pusher_main

    stop = _stop_on_signals()
    settings = load_settings()
    console.print(f"pushing velocity from {settings.lake_dir} to {settings.online_store}")
    pusher_main(settings.model_dump(), stop)
