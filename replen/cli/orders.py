"""Order commands: review suggested purchase orders, approve, reject, edit, export."""

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
    load_settings,
    out,
    render_explained,
    sub_app,
)

orders_app = sub_app("orders", "Suggested purchase orders in the PO store.")


@orders_app.command("list")
def orders_list(
    plan_date: Annotated[str | None, typer.Option("--date", help="Only this plan date.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List suggested purchase orders."""
    from jobs.runtime import Runtime

    with errors():
        when = date.fromisoformat(plan_date) if plan_date else None
        heads = Runtime(load_settings()).orders.purchase_orders(when)
    if as_json:
        print(json.dumps({"purchase_orders": heads.to_dicts()}, default=str))
        return
    table = Table(title="Purchase orders", title_justify="left")
    for col in heads.columns:
        table.add_column(col)
    for row in heads.iter_rows():
        table.add_row(*[str(v) for v in row])
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
    import polars as pl

    from jobs.runtime import Runtime

    with errors():
        rt = Runtime(load_settings())
        store = rt.orders
        lines = store.po_lines().filter(pl.col("po_id") == po_id)
        trail = store.history(po_id)
        if plot is not None:
            from replen.plots import plot_po_lines

            head = store.purchase_orders().filter(pl.col("po_id") == po_id).row(0, named=True)
            path = rt.settings.out_dir / f"forecast_{head['plan_date']}.parquet"
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing; run `replen plan` again")
            plot_po_lines(rt.history(), pl.read_parquet(path), lines, plot)
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

    with errors():
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
    """Approve a suggested PO (it will go to the ERP with the next export)."""
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
    """Change the quantity of one line of a suggested PO; a reason is required."""
    from jobs.runtime import Runtime

    with errors():
        old, new = Runtime(load_settings()).orders.edit_line(
            po_id, sku_id, quantity, actor, reason or ""
        )
    emit(
        {"po_id": po_id, "sku_id": sku_id, "from": old, "to": new},
        as_json,
        lambda: out.print(f"PO {po_id} {sku_id}: {old} → [bold]{new}[/]"),
    )


@orders_app.command("export")
def orders_export(
    path: Annotated[Path, typer.Argument(help="CSV file for the ERP.")],
    actor: ActorOpt = "replen-export",
    as_json: JsonOpt = False,
) -> None:
    """Write every approved PO's lines to a CSV for the ERP, then mark those POs exported."""
    import os

    import polars as pl

    from jobs.runtime import Runtime

    with errors():
        store = Runtime(load_settings()).orders
        lines = store.po_lines().filter(pl.col("status") == "approved")
        cols = ["po_id", "supplier_id", "store_id", "sku_id", "quantity", "unit_cost", "value"]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        lines.select(cols).write_csv(tmp)
        os.replace(tmp, path)  # the file is whole before any PO is marked exported
        ids = sorted(set(lines["po_id"].to_list())) if lines.height else []
        for po_id in ids:
            store.transition(po_id, "exported", actor, detail={"file": str(path)})
    emit(
        {"purchase_orders": len(ids), "lines": lines.height, "path": str(path)},
        as_json,
        lambda: out.print(f"{len(ids)} POs, {lines.height} lines → {path}"),
    )
