"""Corrections: void ingested POS events by id or batch (audited; history is never edited)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from replen.cli._common import JsonOpt, emit, errors, load_settings, out, signed_in, sub_app

corrections_app = sub_app(
    "corrections", "Void ingested POS events (admins); every reader leaves them out."
)


@corrections_app.command("void")
def void(
    reason: Annotated[str, typer.Option(help="Why (kept in the correction record).")],
    event_id: Annotated[
        list[str] | None, typer.Option("--event-id", help="An event to void (repeat).")
    ] = None,
    batch: Annotated[
        list[str] | None, typer.Option("--batch", help="Void every event of this batch (repeat).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Void events as the signed-in admin; velocity is recomputed for the store×SKUs touched,
    and history, features and the next plan leave the events out."""
    from jobs.refresh import push_velocity
    from jobs.runtime import Runtime
    from replen.api.corrections import VoidRequest, void_events

    with errors():
        rt = Runtime(load_settings())
        principal = signed_in(rt, "corrections:write")
        record, keys = void_events(
            rt,
            principal,
            VoidRequest(event_ids=event_id or [], batch_ids=batch or [], reason=reason),
        )
        if keys.height:
            push_velocity(rt)  # sees the void batch: folds the lake again without the events
    emit(
        record,
        as_json,
        lambda: out.print(
            f"voided {record['voided']} events ({record['already_void']} already void, "
            f"{len(record['not_found'])} not found) as {record['actor']}: {record['reason']}"
        ),
    )


@corrections_app.command("list")
def corrections_list(as_json: JsonOpt = False) -> None:
    """Every correction: when, who, why, how many events."""
    from jobs.runtime import Runtime

    with errors():
        voids = Runtime(load_settings()).lake.voids()
    rows = [{"batch_id": m["batch_id"], "at": m["committed_at"], **m["summary"]} for m in voids]
    if as_json:
        print(json.dumps(rows))
        return
    for r in rows:
        out.print(f"{r['at'][:19]} {r['actor']}: voided {r['voided']} — {r['reason']}")
