"""Order commands: review suggested purchase orders, approve, reject, edit (a revision once
approved), and what a plan could not size."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from replen.cli._common import (
    JsonOpt,
    emit,
    errors,
    kv_table,
    load_settings,
    out,
    render_explained,
    signed_in,
    sub_app,
)

orders_app = sub_app("orders", "Suggested purchase orders in the PO store.")


STATUSES = (
    "suggested",
    "approved",
    "rejected",
    "exported",
    "acknowledged",
    "received",
    "superseded",
)


@orders_app.command("list")
def orders_list(
    status: Annotated[
        list[str] | None,
        typer.Option(help=f"Only this status (repeat for several): {', '.join(STATUSES)}."),
    ] = None,
    store: Annotated[list[str] | None, typer.Option(help="Only this store (repeatable).")] = None,
    supplier: Annotated[
        list[str] | None, typer.Option(help="Only this supplier (repeatable).")
    ] = None,
    plan_date: Annotated[str | None, typer.Option("--date", help="Only this plan date.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many POs.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Purchase orders, most urgent first: lines that run out before the delivery, then
    the least days of cover, then the most value at risk."""
    from jobs.review import QueueQuery, queue
    from jobs.runtime import Runtime

    with errors():
        bad = sorted(set(status or []) - set(STATUSES))
        if bad:
            from kernel.errors import InvalidInput

            raise InvalidInput(
                f"--status {bad[0]!r} is not one of {', '.join(STATUSES)}",
                field="status",
                value=bad[0],
                rule="status.enum",
            )
        q = QueueQuery(
            status=list(status or STATUSES),
            store_id=store,
            supplier_id=supplier,
            plan_date=date.fromisoformat(plan_date) if plan_date else None,
            include_snoozed=True,
            page_size=limit,
        )
        page = queue(Runtime(load_settings()), q)
    if as_json:
        print(json.dumps({"purchase_orders": page["items"], "total": page["total"]}, default=str))
        return
    if not page["items"]:
        out.print("no purchase orders yet: `replen plan` suggests them")
        return
    from rich import box

    table = Table(  # a light frame and tight padding: 80 columns hold long store names
        title=f"Purchase orders ({page['total']}; `replen orders show ID` for one)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for name, justify in (
        ("PO", "right"),
        ("supplier", "left"),
        ("store", "left"),
        ("status", "left"),
        ("urgency", "left"),
        ("lines", "right"),
        ("value", "right"),
        ("delivery", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "store")  # type: ignore[arg-type]
    style = {"critical": "bold red", "watch": "yellow", "ok": "green"}
    for po in page["items"]:
        table.add_row(
            str(po["po_id"]),
            po["supplier_id"],
            po["store_id"],
            po["status"] + (" (stale)" if po["stale"] else ""),
            f"[{style[po['urgency']]}]{po['urgency']}[/]",
            str(po["lines"]),
            f"{po['value']:,.0f}" if po["value"] >= 10_000 else f"{po['value']:,.2f}",
            f"{po['expected_delivery']:%b %d}",
        )
    out.print(table)
    if page["total"] > len(page["items"]):
        out.print(f"{page['total'] - len(page['items'])} more: raise --limit or filter")


ReasonOpt = Annotated[str | None, typer.Option(help="Why (kept in the audit trail).")]


@orders_app.command("show")
def orders_show(
    po_id: Annotated[int, typer.Argument(help="Purchase order id.")],
    plot: Annotated[
        Path | None, typer.Option(help="Also draw each line's sales and forecast (PNG).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One PO: every line with the arithmetic behind its quantity, the audit trail, and
    with --plot a picture of each line's recent sales and the forecast it was sized on."""

    from jobs.replenish import plot_po
    from jobs.runtime import Runtime

    rt = Runtime(load_settings())
    trail = rt.orders.history(po_id)  # NotFound if there is no such PO
    lines = rt.orders.po_lines(po_id=po_id)
    if plot is not None:
        plot_po(rt, po_id, plot)
    if as_json:
        print(json.dumps({"lines": lines.to_dicts(), "history": trail}, default=str))
        return
    render_explained(lines)
    if plot is not None:
        out.print(f"plot: {plot}")
    for h in trail:
        out.print(f"{h['at']:%Y-%m-%d %H:%M} {h['actor']}: {h['action']} {h['detail']}")


def _transition(po_id: int, to: str, reason: str | None, as_json: bool) -> None:
    from jobs.runtime import Runtime
    from replen.review import decide

    with errors():
        rt = Runtime(load_settings())
        done = decide(rt, signed_in(rt, "orders:approve"), po_id, to, reason)
    emit(done, as_json, lambda: out.print(f"PO {po_id}: {done['from']} → [bold]{to}[/]"))


@orders_app.command("approve")
def orders_approve(po_id: int, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Approve a suggested PO as the signed-in approver (within their value limit); it goes
    to the ERP with the next export."""
    _transition(po_id, "approved", reason, as_json)


@orders_app.command("reject")
def orders_reject(po_id: int, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Reject a PO as the signed-in approver; a reason is required."""
    _transition(po_id, "rejected", reason, as_json)


@orders_app.command("edit")
def orders_edit(
    po_id: int,
    sku_id: str,
    quantity: Annotated[int, typer.Argument(help="New quantity in units.")],
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the quantity of one line as the signed-in planner; a reason is required.

    A suggested PO changes in place; an approved, exported or acknowledged one gets a new
    revision, queued for the ERP as a new version of the same order (never a second one).
    """
    from jobs.runtime import Runtime
    from replen.review import edit

    with errors():
        rt = Runtime(load_settings())
        done = edit(rt, signed_in(rt, "orders:edit"), po_id, sku_id, quantity, reason or "")
    emit(
        done,
        as_json,
        lambda: out.print(f"PO {po_id} {sku_id}: {done['from']} → [bold]{done['to']}[/]"),
    )


@orders_app.command("unplanned")
def orders_unplanned(
    plan_date: Annotated[
        str | None, typer.Option("--date", help="Plan date (default: the newest plan).")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only no_position, no_rule or no_forecast.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows to show.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Store×SKUs a plan did not size, and why: no stock position, no item rule, or no
    sales history to forecast from. They are never ordered as if stock were zero."""
    import polars as pl

    from jobs.runtime import Runtime

    when = date.fromisoformat(plan_date) if plan_date else None
    rows = Runtime(load_settings()).orders.unplanned(when)
    if reason:
        rows = rows.filter(pl.col("reason") == reason)
    counts = dict(rows.group_by("reason").len().sort("reason").iter_rows())
    if as_json:
        print(json.dumps({"by_reason": counts, "unplanned": rows.to_dicts()}, default=str))
        return
    if rows.is_empty():
        out.print(f"nothing unplanned{f' on {plan_date}' if plan_date else ''}")
        return
    out.print(kv_table(f"Unplanned on {rows['plan_date'][0]}: {rows.height}", counts))
    table = Table(title_justify="left")
    for col in ("store_id", "sku_id", "reason", "detail"):
        table.add_column(col, overflow="fold")
    for r in rows.head(limit).iter_rows(named=True):
        table.add_row(r["store_id"], r["sku_id"], r["reason"], r["detail"])
    out.print(table)


@orders_app.command("value-added")
def orders_value_added(as_json: JsonOpt = False) -> None:
    """Forecast value added: planners' changes against the suggestions, scored on what sold
    over each line's protection period (once it has passed), per planner, store and model
    version. Positive: the changes made the forecast behind the order better."""
    from jobs.review import value_added_report
    from jobs.runtime import Runtime

    with errors():
        report = value_added_report(Runtime(load_settings()))
    if as_json:
        print(json.dumps(report, default=str))
        return
    out.print(
        f"{report['changed_lines']} changed lines on approved POs, {report['scored_lines']} "
        f"scored (periods ended by {report['as_of'] or '—'})"
    )
    if not report["groups"]:
        return
    table = Table(title="Forecast value added", title_justify="left")
    for name in ("planner", "store", "model", "lines", "WAPE sugg.", "WAPE planner", "FVA"):
        table.add_column(name, justify="left" if name in ("planner", "store") else "right")
    for g in report["groups"]:
        table.add_row(
            g["planner"],
            g["store_id"],
            g["model_version"],
            str(g["lines"]),
            f"{g['wape_suggestion']:.1%}",
            f"{g['wape_planner']:.1%}",
            f"{g['value_added'] * 100:+.1f} pts",
        )
    out.print(table)
