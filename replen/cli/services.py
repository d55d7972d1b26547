"""Services of a multi-process deployment: the velocity pusher and the POS stream consumer."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from replen.cli._common import (
    JsonOpt,
    app,
    console,
    emit,
    errors,
    kv_table,
    load_settings,
    out,
    quiet_libraries,
    sub_app,
)

consume_app = sub_app("consume", "Read events from a stream into the lake (Redis Streams).")


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

    settings = load_settings()
    console.print(f"pushing velocity from {settings.lake_dir} to {settings.online_store}")
    pusher_main(settings.model_dump())


@consume_app.command("pos")
def consume_pos_cmd(
    stream: Annotated[
        str | None, typer.Option(help="Redis stream (default REPLEN_POS_STREAM).")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Consumer group (default REPLEN_POS_GROUP).")
    ] = None,
    consumer: Annotated[
        str | None,
        typer.Option(help="This consumer's name, stable across restarts (default: hostname)."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Events per lake batch at most.")] = 5000,
    until_idle: Annotated[
        float | None,
        typer.Option(help="Exit once the stream stayed empty this many seconds (default: run)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest POS events from a Redis stream (REPLEN_REDIS_URL) with a consumer group.

    One event per stream entry, its fields named as the POS contract (event_id, store_id,
    sku_id, sold_at, quantity, unit_price, ...). Each batch is acknowledged only once
    committed to the lake; resent events count as duplicates, so a crash loses and
    doubles nothing. Runs until SIGTERM or Ctrl-C, or --until-idle.
    """
    quiet_libraries()
    from features.streams import RedisStreamSource
    from jobs.consume import consume_pos
    from jobs.runtime import Runtime

    stop = _stop_on_signals()
    settings = load_settings()
    with errors():
        source = RedisStreamSource(
            settings.redis_url, stream or settings.pos_stream, group or settings.pos_group, consumer
        )
        if not as_json:
            console.print(
                f"consuming {source.stream} as {source.group}/{source.consumer} "
                f"into {settings.lake_dir}"
            )
        summary = consume_pos(
            Runtime(settings),
            source,
            batch_max=batch,
            stop=stop,
            until_idle=until_idle,
            on_batch=None
            if as_json
            else lambda b: console.print(
                f"batch: {b.accepted:,} accepted, {b.duplicates:,} duplicates, "
                f"{b.rejected:,} rejected"
            ),
        )
    data = summary.to_dict()
    data.pop("batch_ids")
    emit(data, as_json, lambda: out.print(kv_table(f"POS stream {source.stream}", data)))
