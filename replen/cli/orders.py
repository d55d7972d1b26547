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
    kv_table,
    load_settings,
    out,
    render_explained,
    sub_app,
)

orders_app = sub_app("orders", "Suggested purchase orders in the PO store.")


@orders_app.command("list")
def orders_list(
    plan_date: Annotated[str | None, typer.Option("--date", help="Only this plan date.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only this status: suggested, approved, exported, acknowledged, …"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List purchase orders."""
    from jobs.runtime import Runtime

    when = date.fromisoformat(plan_date) if plan_date else None
    heads = Runtime(load_settings()).orders.purchase_orders(when, status)
    if as_json:
        print(json.dumps({"purchase_orders": heads.to_dicts()}, default=str))
        return
    if heads.is_empty():
        out.print("no purchase orders yet: `replen plan` suggests them")
        return
    from rich import box

    table = Table(
        title=f"Purchase orders ({heads.height})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    shown = {
        "po": "po_id",
        "supplier": "supplier_id",
        "store": "store_id",
        "order": "order_date",
        "delivery": "expected_delivery",
        "status": "status",
        "rev": "revision",
        "lines": "lines",
        "value": "value",
    }
    for label in shown:
        table.add_column(
            label, justify="right" if label in ("po", "rev", "lines", "value") else "left"
        )
    for row in heads.iter_rows(named=True):
        cells = [str(row[c]) for c in shown.values()]
        cells[-1] = f"{row['value']:,.2f}"
        cells[5] += " (stale)" if row["stale"] else ""
        table.add_row(*cells)
    out.print(table)


ActorOpt = Annotated[
    str, typer.Option(help="Who does this (kept in the audit trail).", envvar="USER")
]
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


def _transition(po_id: int, to: str, actor: str, reason: str | None, as_json: bool) -> None:
    from jobs.runtime import Runtime

    before = Runtime(load_settings()).orders.transition(po_id, to, actor, reason)
    emit(
        {"po_id": po_id, "from": before, "to": to},
        as_json,
        lambda: out.print(f"PO {po_id}: {before} → [bold]{to}[/]"),
    )


@orders_app.command("approve")
def orders_approve(
    po_id: int, actor: ActorOpt = "planner", reason: ReasonOpt = None, as_json: JsonOpt = False
) -> None:
    """Approve a suggested PO: it is queued for the ERP (`replen erp deliver`)."""
    _transition(po_id, "approved", actor, reason, as_json)


@orders_app.command("reject")
def orders_reject(
    po_id: int, reason: ReasonOpt = None, actor: ActorOpt = "planner", as_json: JsonOpt = False
) -> None:
    """Reject a PO; a reason is required."""
    _transition(po_id, "rejected", actor, reason, as_json)


@orders_app.command("edit")
def orders_edit(
    po_id: int,
    sku_id: str,
    quantity: Annotated[int, typer.Argument(help="New quantity in units.")],
    reason: ReasonOpt = None,
    actor: ActorOpt = "planner",
    as_json: JsonOpt = False,
) -> None:
    """Change the quantity of one line; a reason is required.

    A suggested PO changes in place; an approved, exported or acknowledged one gets a new
    revision, queued for the ERP as a new version of the same order (never a second one).
    """
    from jobs.runtime import Runtime

    old, new = Runtime(load_settings()).orders.edit_line(
        po_id, sku_id, quantity, actor, reason or ""
    )
    emit(
        {"po_id": po_id, "sku_id": sku_id, "from": old, "to": new},
        as_json,
        lambda: out.print(f"PO {po_id} {sku_id}: {old} → [bold]{new}[/]"),
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
