"""Data commands: POS and stock ingestion, features, the quarantine, replenishment rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table
from rich.text import Text

from kernel.errors import NotFound
from kernel.files import write_table
from replen.cli._common import (
    HistoryOpt,
    JsonOpt,
    app,
    cell,
    console,
    emit,
    history_frame,
    kv_table,
    load_settings,
    out,
    progress_bar,
    quiet_libraries,
    sub_app,
)

ingest_app = sub_app(
    "ingest",
    "Load POS lines, stock positions, item/store names, ERP receipts and acknowledgements; "
    "calendar, price list, promotions and item attributes beside them.",
)
features_app = sub_app("features", "Daily sales and velocity in the Feast feature store.")
quarantine_app = sub_app(
    "quarantine", "Rejected lines of every feed, kept with the rule they broke and the raw line."
)
rules_app = sub_app("rules", "Replenishment rules: suppliers, items, store×SKU overrides.")


# ingest --------------------------------------------------------------------------------------
@ingest_app.command("pos")
def ingest_pos_cmd(
    file: Annotated[
        Path, typer.Argument(help="CSV (.gz), Parquet or NDJSON file.", exists=True, dir_okay=False)
    ],
    mapping: Annotated[
        str,
        typer.Option(
            help="Column mapping: 'replen' (the contract's own names) or 'uci-online-retail'."
        ),
    ] = "replen",
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="Rename a column: target=source (repeatable)."),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Time zone of naive sold_at values, e.g. Europe/London.")
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Lines per committed batch.")] = 250_000,
    push: Annotated[bool, typer.Option(help="Push fresh velocity to Feast online.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Validate POS lines and append the new ones to the lake (idempotent by event_id).

    Contract columns: event_id, store_id, sku_id, sold_at (ISO-8601 with offset), quantity
    (negative = return), unit_price; optional promo_id, register_id, currency. Rejected
    lines go to quarantine with the rule they broke (`replen quarantine list`).
    """
    quiet_libraries()
    from jobs.refresh import ingest_pos, read_pos
    from jobs.runtime import Runtime

    rt = Runtime(load_settings())
    with console.status(f"reading {file}", spinner="dots"):
        raw = read_pos(file, mapping, map_ or [], timezone)
    with progress_bar(
        count="{task.completed:,}/{task.total:,} lines", disable=as_json, transient=True
    ) as progress:
        task = progress.add_task("ingesting", total=raw.height)
        summary = ingest_pos(
            rt,
            raw,
            push=push,
            chunk_rows=chunk_rows,
            on_progress=lambda n: progress.advance(task, n),
        )
    data = summary.to_dict()
    data.pop("batch_ids")

    def render() -> None:
        out.print(kv_table(f"POS ingest of {file.name}", data))
        for line in _quarantine_lines(summary.rejected, summary.already_quarantined, "pos"):
            out.print(line)

    emit(data, as_json, render)


def _quarantine_lines(rejected: int, already: int, feed: str) -> list[str]:
    """What happened to an ingest's rejected lines, in words."""
    lines = []
    if rejected - already:
        lines.append(
            f"{rejected - already:,} rejected {_lines(rejected - already)} quarantined: "
            f"[bold]replen quarantine list --feed {feed}[/]"
        )
    if already:
        lines.append(
            f"{already:,} rejected {_lines(already)} already in quarantine "
            "(delivered before): not recorded again"
        )
    return lines


def _lines(n: int) -> str:
    return "line" if n == 1 else "lines"


@ingest_app.command("inventory")
def ingest_inventory_cmd(
    file: Annotated[
        Path, typer.Argument(help="store_id, sku_id, as_of, on_hand.", exists=True, dir_okay=False)
    ],
    as_json: JsonOpt = False,
) -> None:
    """On-hand history for demand censoring (zero on hand marks a stockout day).

    Not what the plan starts from: that is the stock position (`replen ingest stock`)."""
    from features.inventory import read_inventory
    from jobs.refresh import ingest_inventory
    from jobs.runtime import Runtime

    rows = ingest_inventory(Runtime(load_settings()), read_inventory(file))
    emit({"rows": rows}, as_json, lambda: out.print(f"{rows:,} snapshots committed"))


FeedFile = Annotated[
    Path, typer.Argument(help="CSV (.gz), Parquet or NDJSON file.", exists=True, dir_okay=False)
]


def _ingest_feed(kind: str, file: Path, as_json: bool) -> None:
    from jobs.erp import ingest_feed
    from jobs.runtime import Runtime
    from kernel.inputs import read_table

    rt = Runtime(load_settings())
    raw = read_table(file, strings=True)
    first = 2 if file.name.lower().endswith((".csv", ".csv.gz", ".tsv", ".txt")) else 1
    with console.status(f"loading {file.name}", spinner="dots"):
        report = ingest_feed(rt, kind, raw, source=str(file), first_line=first)
    data = report.to_dict()

    def render() -> None:
        hidden = {"rejected_by_rule", "notes"} | (
            {"older_than_current"} if kind != "stock" else set()
        )
        shown = {k: v for k, v in data.items() if k not in hidden}
        out.print(kv_table(f"{kind} from {file.name}", shown))
        for note in report.notes:
            out.print(note)
        if report.rejected:
            out.print(kv_table("Rejected by rule", report.rejected_by_rule))
            for line in _quarantine_lines(report.rejected, report.already_quarantined, kind):
                out.print(line)

    emit(data, as_json, render)


@ingest_app.command("stock")
def ingest_stock_cmd(file: FeedFile, as_json: JsonOpt = False) -> None:
    """Stock positions from the ERP or store system: what the plan starts from.

    Columns: store_id, sku_id, as_of (ISO-8601 with offset), on_hand; optional on_order
    (open ERP POs), in_transit, backorders (default 0). Each row is checked (rules named
    `<field>.<rule>`, rejected rows kept: `replen quarantine list --feed stock`); a resend is
    a duplicate, the same store×SKU×as_of with other values a correction; every as_of is
    kept and the plan uses the latest one up to its date. A store×SKU without a position
    is not planned.
    """
    _ingest_feed("stock", file, as_json)


@ingest_app.command("items")
def ingest_items_cmd(file: FeedFile, as_json: JsonOpt = False) -> None:
    """Item names: sku_id, name; optional description, unit, department, category.

    Loaded by sku_id (a later load updates); shown on every screen and sent to the ERP."""
    _ingest_feed("items", file, as_json)


@ingest_app.command("stores")
def ingest_stores_cmd(file: FeedFile, as_json: JsonOpt = False) -> None:
    """Store names: store_id, name; optional region, timezone (IANA, e.g. Europe/Paris)."""
    _ingest_feed("stores", file, as_json)


@ingest_app.command("receipts")
def ingest_receipts_cmd(file: FeedFile, as_json: JsonOpt = False) -> None:
    """Goods receipts from the ERP: receive POs fully or in part.

    Columns: receipt_id, po_id (Replen's PO id, the ERP order's origin) or erp_po_number,
    sku_id, quantity, received_at; optional store_id (checked against the PO). A receipt
    line already stored is a duplicate. Lead times are measured from these
    (`replen rules lead-times`)."""
    _ingest_feed("receipts", file, as_json)


@ingest_app.command("acks")
def ingest_acks_cmd(file: FeedFile, as_json: JsonOpt = False) -> None:
    """PO acknowledgements from the ERP: an ordered PO becomes acknowledged.

    Columns: po_id or erp_po_number; optional erp_po_number, sku_id with
    confirmed_quantity and confirmed_delivery (YYYY-MM-DD), acknowledged_at."""
    _ingest_feed("acks", file, as_json)


# reference files and data checks -------------------------------------------------------------
_ARTICLE = {
    "calendar": "a calendar",
    "prices": "a price list",
    "promotions": "a promotions",
    "attributes": "an item attributes",
}
REFERENCE_FILES = {
    "calendar": "date; optional store_id (empty or * = every store), event, event_type, "
    "payday (0/1: paydays, SNAP-like days). One row per date and store.",
    "prices": "sku_id, valid_from, price; optional store_id (empty = every store). The list "
    "price from valid_from until the next row.",
    "promotions": "promo_id, sku_id, start_date, end_date; optional store_id (empty = every "
    "store), discount (0.2 = 20% off). Past and planned promotions.",
    "attributes": "sku_id; optional department, category.",
}


def _reference_command(kind: str, columns: str) -> None:
    def command(file: Path, as_json: bool = False) -> None:
        quiet_libraries()
        from jobs.model_inputs import ingest_reference
        from jobs.runtime import Runtime
        from kernel.inputs import read_table

        report = ingest_reference(
            Runtime(load_settings()), kind, read_table(file, strings=True), str(file)
        )
        data = report.to_dict()
        emit(data, as_json, lambda: out.print(kv_table(f"{kind.capitalize()} ({file.name})", data)))

    # Typer reads the parameters' annotations; built here, not as strings, per kind.
    command.__annotations__ = {
        "file": Annotated[
            Path,
            typer.Argument(help=f"CSV, Parquet or NDJSON: {columns}", exists=True, dir_okay=False),
        ],
        "as_json": JsonOpt,
        "return": None,
    }
    command.__doc__ = (
        f"Load {_ARTICLE[kind]} file: {columns}\n\nEvery line is checked (rules named field.rule, "
        "errors by file line); a file with any error changes nothing. Rows are merged by "
        "key (a resent row replaces the old one); Feast sees them at the next refresh or "
        "retrain."
    )
    ingest_app.command(kind)(command)


for _kind, _columns in REFERENCE_FILES.items():
    _reference_command(_kind, _columns)


@app.command("checks")
def checks_cmd(history: HistoryOpt = None, as_json: JsonOpt = False) -> None:
    """Data checks before modelling: blocks of history that are not demand.

    Whole weeks whose level shifts sharply while the weekly cycle vanishes (a placeholder
    block, a broken extract, an outage), or whose selling days lost their prices, found
    per chain, store and series. The retrain treats them as missing, never as demand.
    """
    quiet_libraries()
    from jobs.model_inputs import data_exceptions
    from jobs.runtime import Runtime

    rt = Runtime(load_settings())
    with console.status("checking the sales history"):
        blocks = data_exceptions(rt, history_frame(rt, history))
    if as_json:
        print(json.dumps({"blocks": blocks.to_dicts()}, default=str))
        return
    if blocks.is_empty():
        out.print("No suspect blocks: every week looks like demand.")
        return
    table = Table(
        title=f"{blocks.height} suspect block(s), masked at retrain",
        title_justify="left",
        caption="store/sku empty: the whole chain or store; rule shift: level shift without "
        "the weekly cycle, price: prices missing",
        caption_justify="left",
    )
    short = {"level_shift_no_cycle": "shift", "price_missing": "price"}
    for col in ("store", "sku", "from", "to", "weeks", "rule", "level×"):
        right = col in ("weeks", "level×")
        table.add_column(col, justify="right" if right else "left", no_wrap=True)
    for r in blocks.iter_rows(named=True):
        table.add_row(
            r["store_id"] or "",
            r["sku_id"] or "",
            str(r["start"]),
            str(r["end"]),
            str(r["weeks"]),
            short.get(r["rule"], r["rule"]),
            f"{r['level_ratio']:.2f}" if r["level_ratio"] is not None else "",
        )
    out.print(table)


# features ------------------------------------------------------------------------------------
@features_app.command("refresh")
def features_refresh(as_json: JsonOpt = False) -> None:
    """Recompute velocity from the lake, write Feast's offline table, materialize online."""
    quiet_libraries()
    from jobs.refresh import refresh_features
    from jobs.runtime import Runtime

    with console.status("refreshing features"):
        result = refresh_features(Runtime(load_settings()))
    emit(result.to_dict(), as_json, lambda: out.print(kv_table("Features", result.to_dict())))


@features_app.command("rebuild")
def features_rebuild(as_json: JsonOpt = False) -> None:
    """Recreate Feast entirely from the lake (registry, offline table, online store)."""
    quiet_libraries()
    from jobs.refresh import rebuild_features
    from jobs.runtime import Runtime

    with console.status("rebuilding features from the lake"):
        result = rebuild_features(Runtime(load_settings()))
    emit(result.to_dict(), as_json, lambda: out.print(kv_table("Rebuilt", result.to_dict())))


@features_app.command("show")
def features_show(
    store_id: Annotated[str, typer.Argument(help="Store id.")],
    sku_id: Annotated[str, typer.Argument(help="SKU id.")],
    as_json: JsonOpt = False,
) -> None:
    """Read one store×SKU's velocity from the Feast online store."""
    quiet_libraries()
    import polars as pl

    from jobs.runtime import Runtime

    frame = Runtime(load_settings()).features.online_velocity(
        pl.DataFrame({"store_id": [store_id], "sku_id": [sku_id]})
    )
    row = frame.row(0, named=True)
    emit(row, as_json, lambda: out.print(kv_table(f"Velocity {store_id}/{sku_id}", row)))


# quarantine ----------------------------------------------------------------------------------
@quarantine_app.command("list")
def quarantine_list(
    rule: Annotated[str | None, typer.Option(help="Only this rule, e.g. quantity.bound.")] = None,
    feed: Annotated[str, typer.Option(help="pos, stock, items, stores, receipts or acks.")] = "pos",
    limit: Annotated[int, typer.Option(min=1, help="Lines to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Count rejected lines by rule and show the latest ones."""
    import polars as pl

    from jobs.runtime import Runtime

    rt = Runtime(load_settings())
    if feed == "pos":
        q = rt.lake.quarantine()
        key = "event_id"
    else:
        from features.feeds import FEEDS

        if feed not in FEEDS:
            raise ValueError(f"--feed {feed!r} unknown; choose pos or {', '.join(FEEDS)}")
        q = rt.positions.rejects(feed)
        key = "key"
    if rule:
        q = q.filter(pl.col("rule") == rule)
    counts = dict(q.group_by("rule").len().sort("rule").iter_rows())
    if as_json:
        print(
            json.dumps(
                {"total": q.height, "by_rule": counts, "lines": q.tail(limit).to_dicts()},
                default=str,
            )
        )
        return
    if q.is_empty():
        out.print(f"the {feed} quarantine is empty: no line was rejected")
        return
    out.print(kv_table(f"Quarantine ({feed}): {q.height:,} lines", counts))
    table = Table(title_justify="left")
    cols = ("line", key, "rule", "value", "message")
    for col in cols:
        table.add_column(col, overflow="fold")
    for row in q.tail(limit).iter_rows(named=True):
        table.add_row(*[_raw(row.get(c)) for c in cols])
    out.print(table)


def _raw(value: object) -> Text:
    """A value as received, shown verbatim: no markup, no emoji (``A1:B:0`` stays text)."""
    return Text("" if value is None else str(value))


@quarantine_app.command("show")
def quarantine_show(
    event_id: Annotated[str, typer.Argument(help="The rejected line's event_id.")],
    as_json: JsonOpt = False,
) -> None:
    """Show every quarantine record of one event id, with its raw payload."""
    import polars as pl

    from jobs.runtime import Runtime

    q = Runtime(load_settings()).lake.quarantine().filter(pl.col("event_id") == event_id)
    if q.is_empty():
        raise NotFound(
            f"no quarantined line has event_id {event_id!r}", hint="see `replen quarantine list`"
        )
    rows = q.to_dicts()
    if as_json:
        print(json.dumps({"records": rows}, default=str))
        return
    for row in rows:
        table = Table(title=Text(f"{event_id} ({row['batch_id']})"), show_header=False)
        table.title_justify = "left"
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in row.items():
            table.add_row(key, _raw(value))
        out.print(table)


@quarantine_app.command("export")
def quarantine_export(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file to write.")],
    as_json: JsonOpt = False,
) -> None:
    """Write every quarantined line (rule, message, raw payload) to a file."""
    from jobs.runtime import Runtime

    q = Runtime(load_settings()).lake.quarantine()
    write_table(q, path)
    emit(
        {"rows": q.height, "path": str(path)},
        as_json,
        lambda: out.print(f"{q.height:,} quarantined lines → {path}"),
    )


# rules ---------------------------------------------------------------------------------------
RulesFiles = Annotated[
    list[Path],
    typer.Argument(
        help="YAML files (sections suppliers, items, overrides) and/or CSV files "
        "suppliers.csv, items.csv, overrides.csv, or folders of them."
    ),
]


@rules_app.command("validate")
def rules_validate(files: RulesFiles, as_json: JsonOpt = False) -> None:
    """Check rules files without loading them; errors name the file and line."""
    from replenishment.rules import load_rules

    rules = load_rules(files)
    emit(
        {"valid": True, **rules.summary()},
        as_json,
        lambda: out.print(kv_table("Rules are valid", rules.summary())),
    )


@rules_app.command("load")
def rules_load(files: RulesFiles, as_json: JsonOpt = False) -> None:
    """Validate rules files and replace the stored rules with them (all or nothing)."""
    from jobs.runtime import Runtime
    from replenishment.rules import load_rules

    rules = load_rules(files)
    counts = Runtime(load_settings()).rules_store.save(rules, ", ".join(map(str, files)))
    emit({"loaded": True, **counts}, as_json, lambda: out.print(kv_table("Rules loaded", counts)))


@rules_app.command("show")
def rules_show(as_json: JsonOpt = False) -> None:
    """Show the stored suppliers, items and overrides."""
    from jobs.runtime import Runtime

    rt = Runtime(load_settings())
    rules = rt.rules()
    last = rt.rules_store.last_load() or {}
    if as_json:
        print(
            json.dumps(
                {
                    "suppliers": rules.suppliers.to_dicts(),
                    "items": rules.items.to_dicts(),
                    "overrides": rules.overrides.to_dicts(),
                    "loaded": last,
                },
                default=str,
            )
        )
        return
    out.print(f"Loaded {cell(last.get('loaded_at')) or '?'} from {last.get('source', '?')}")
    for name in ("suppliers", "items", "overrides"):
        frame = getattr(rules, name)
        if frame.is_empty():
            out.print(f"{name}: none")
            continue
        table = Table(
            title=f"{name} ({frame.height})",
            title_justify="left",
            caption="lead, ±, review and shelf life in days" if name != "overrides" else None,
        )
        for col in frame.columns:
            label = _RULE_LABELS.get(col, col)
            text = frame[col].dtype == pl.String
            wide = None if col == "order_days" else len(label)
            table.add_column(
                label, justify="left" if text else "right", min_width=wide, overflow="fold"
            )
        for row in frame.head(30).iter_rows():
            table.add_row(*[cell(v) for v in row])
        out.print(table)


# Short headers so that the rules tables fit 80 columns.
_RULE_LABELS = {
    "supplier_id": "supplier",
    "lead_time_mean": "lead",
    "lead_time_std": "±",
    "order_days": "order days",
    "review_period_days": "review",
    "min_order_value": "min PO",
    "min_order_action": "action",
    "max_order_value": "max PO",
    "currency": "cur",
    "sku_id": "sku",
    "unit_cost": "cost",
    "pack_size": "pack",
    "moq_units": "MOQ",
    "shelf_life_days": "shelf life",
    "round_up_fraction": "round up",
    "store_id": "store",
    "service_level": "service",
    "max_capacity": "max units",
    "min_presentation": "min shown",
}


@rules_app.command("lead-times")
def rules_lead_times(
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Write the measured mean and standard deviation into the stored rules "
            "(suppliers with at least --min-receipts received POs).",
        ),
    ] = False,
    min_receipts: Annotated[int, typer.Option(min=1, help="Received POs needed.")] = 5,
    actor: Annotated[str, typer.Option(help="Who does this.", envvar="USER")] = "planner",
    as_json: JsonOpt = False,
) -> None:
    """Supplier lead times: configured (rules) against measured (order → first receipt):
    mean, standard deviation, share of POs received by their expected delivery."""
    from jobs.erp import lead_time_report, update_lead_times
    from jobs.runtime import Runtime

    rt = Runtime(load_settings())
    report = lead_time_report(rt)
    changes = update_lead_times(rt, min_receipts, actor) if update else {}
    if as_json:
        print(json.dumps({"suppliers": report.to_dicts(), "updated": changes}, default=str))
        return
    table = Table(title="Lead times (days)", title_justify="left")
    for col in ("supplier", "rule mean", "rule std", "POs", "measured mean", "std", "on time"):
        table.add_column(col, justify="left" if col == "supplier" else "right")
    fmt = lambda v, p="{:.1f}": "" if v is None else p.format(v)  # noqa: E731
    for r in report.iter_rows(named=True):
        table.add_row(
            r["supplier_id"],
            fmt(r["configured_mean"]),
            fmt(r["configured_std"]),
            str(r["receipts"]),
            fmt(r["measured_mean"]),
            fmt(r["measured_std"]),
            fmt(r["on_time_rate"], "{:.0%}"),
        )
    out.print(table)
    if update:
        out.print(
            f"updated {len(changes)} supplier(s)"
            if changes
            else f"nothing updated: no supplier has {min_receipts}+ received POs"
        )
        if changes:
            out.print("note: `replen rules load` replaces them again with the file's values")
