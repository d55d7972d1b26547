"""ERP commands: deliver approved POs through the outbox (once or as a worker loop), see the
outbox and its dead letters, retry one."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Annotated

import typer
from rich.table import Table

from replen.cli._common import JsonOpt, console, emit, kv_table, load_settings, out, sub_app

erp_app = sub_app(
    "erp",
    "Approved POs to the ERP (outbox, exactly once per version) and what comes back.",
)
log = logging.getLogger("replen.erp")

ActorOpt = Annotated[
    str, typer.Option(help="Who does this (kept in the audit trail).", envvar="USER")
]


@erp_app.command("deliver")
def erp_deliver(
    loop: Annotated[
        bool,
        typer.Option(
            "--loop",
            help="Keep delivering until SIGTERM/Ctrl-C (the delivery worker); otherwise one "
            "pass over what is due now.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send approved PO versions to the ERP through the adapter in REPLEN_ERP_ADAPTER.

    Each version goes once, under the idempotency key PO id + revision; failures are tried
    again with capped exponential backoff (Retry-After honoured), a 4xx answer puts it in
    the dead letters. A PO becomes exported when the ERP has accepted it.
    """
    from jobs.erp import deliver_loop, deliver_once
    from jobs.runtime import Runtime

    rt = Runtime(load_settings())
    if loop:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        console.print(f"delivering to the ERP ({rt.settings.erp_adapter}) until stopped (Ctrl-C)")
        report = deliver_loop(
            rt,
            stop,
            on_pass=lambda r: log.info(
                "pass: %d sent, %d delivered, %d to retry, %d dead",
                r.attempts,
                r.delivered,
                r.retried,
                r.dead,
            ),
        )
    else:
        with console.status("delivering", spinner="dots") as status:
            report = deliver_once(
                rt,
                on_batch=lambda r: status.update(
                    f"delivering: {r.delivered} delivered, {r.retried} to retry, {r.dead} dead"
                ),
            )
    counts = rt.outbox.counts()
    data = {**report.to_dict(), "outbox": counts}
    emit(
        data,
        as_json,
        lambda: _render_report(data),
    )


def _render_report(data: dict) -> None:
    flat = {k: v for k, v in data.items() if k not in ("outbox", "errors")}
    out.print(kv_table("Delivery", flat))
    if data["errors"]:
        out.print(kv_table("Failed attempts by cause", data["errors"]))
    out.print(kv_table("Outbox now", data["outbox"] or {"(empty)": ""}))
    if data["outbox"].get("dead"):
        out.print("dead letters: [bold]replen erp dead-letters[/]")


@erp_app.command("status")
def erp_status(as_json: JsonOpt = False) -> None:
    """The outbox by status, the next delivery due, and the adapter configured."""
    from jobs.runtime import Runtime

    rt = Runtime(load_settings())
    counts = rt.outbox.counts()
    due = rt.outbox.next_due()
    from jobs.erp import adapter_from
    from kernel.errors import NotReady

    try:
        adapter_from(rt.settings).close()
        ready = "ready"
    except NotReady as exc:
        ready = f"not ready: {exc}"
    data = {
        "adapter": rt.settings.erp_adapter or "(none)",
        "adapter_status": ready,
        **{f"outbox.{k}": v for k, v in sorted(counts.items())},
        "next_due": due.isoformat() if due else None,
    }
    emit(data, as_json, lambda: out.print(kv_table("ERP delivery", data)))


@erp_app.command("dead-letters")
def erp_dead_letters(as_json: JsonOpt = False) -> None:
    """PO versions the ERP refused for good, each with the reason; fix, then `erp retry`."""
    from jobs.runtime import Runtime

    dead = Runtime(load_settings()).outbox.deliveries("dead")
    if as_json:
        print(json.dumps({"dead_letters": dead.to_dicts()}, default=str))
        return
    if dead.is_empty():
        out.print("no dead letters")
        return
    table = Table(title=f"Dead letters ({dead.height})", title_justify="left")
    for col in ("po_id", "rev", "attempts", "reason"):
        table.add_column(col, overflow="fold")
    for r in dead.iter_rows(named=True):
        table.add_row(str(r["po_id"]), str(r["revision"]), str(r["attempts"]), r["dead_reason"])
    out.print(table)
    out.print("after fixing the cause: replen erp retry PO_ID")


@erp_app.command("retry")
def erp_retry(
    po_id: Annotated[int, typer.Argument(help="PO id of a dead letter.")],
    actor: ActorOpt = "operator",
    as_json: JsonOpt = False,
) -> None:
    """Queue a dead-lettered PO version for delivery again (same idempotency key)."""
    from jobs.runtime import Runtime

    key = Runtime(load_settings()).outbox.retry(po_id, actor)
    emit(
        {"po_id": po_id, "idempotency_key": key, "status": "pending"},
        as_json,
        lambda: out.print(f"PO {po_id}: {key} queued again; `replen erp deliver` sends it"),
    )
