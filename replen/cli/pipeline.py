"""Pipeline commands: demo, synthetic data, training, backtest, forecast, plan, simulation."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kernel.files import write_csv
from replen.cli._common import (
    FreqOpt,
    HistoryOpt,
    JsonOpt,
    app,
    console,
    emit,
    history_frame,
    kv_table,
    load_settings,
    out,
    progress_bar,
    quiet_libraries,
    render_explained,
)
from replen.settings import Settings


# demo ----------------------------------------------------------------------------------------
@app.command()
def demo(
    stores: Annotated[int, typer.Option(min=1, help="Number of stores.")] = 5,
    skus: Annotated[int, typer.Option(min=1, help="Number of SKUs per store.")] = 40,
    days: Annotated[int, typer.Option(min=120, help="Days of sales history.")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same chain).")] = 7,
    reset: Annotated[
        bool, typer.Option(help="Empty the data directory first (keeps MLflow history).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole pipeline on a synthetic chain: POS → lake → Feast → MLflow → POs.

    Writes everything under the data directory (REPLEN_DATA_DIR, default ./.replen) and
    MLflow's store (./mlflow); prints the suggested POs and where to look next.
    """
    quiet_libraries()
    from replen.demo import STAGES, run_demo

    settings = load_settings()
    with progress_bar(disable=as_json, transient=as_json) as progress:
        task = progress.add_task("starting", total=len(STAGES))

        def on_stage(i: int, name: str) -> None:
            progress.update(task, completed=i, description=f"[{i + 1}/{len(STAGES)}] {name}")

        summary = run_demo(
            settings, stores=stores, skus=skus, days=days, seed=seed, reset=reset, on_stage=on_stage
        )
        progress.update(task, completed=len(STAGES), description="done")
    if as_json:
        print(json.dumps(summary.to_dict(), default=str))
        return
    render_demo(summary.to_dict(), settings)


def render_demo(s: dict[str, Any], settings: Settings) -> None:
    import polars as pl

    from jobs.runtime import Runtime

    ing, tr, plan = s["ingest"], s["training"], s["plan"]
    out.print(
        f"[bold]POS[/]: {ing['received']:,} lines received, {ing['accepted']:,} accepted, "
        f"{ing['duplicates']:,} duplicates, {ing['rejected']:,} rejected"
    )
    out.print(
        f"[bold]Model[/]: {tr['series']} series, version {tr['model_version']} → "
        f"alias [green]{tr['alias']}[/]; backtest WAPE {tr['metrics'].get('wape', 0):.3f}, "
        f"RMSSE {tr['metrics'].get('rmsse', 0):.3f} ({tr['seconds']:.1f}s)"
    )
    rt = Runtime(settings)
    plan_date = date.fromisoformat(plan["plan_date"])
    heads = rt.orders.purchase_orders(plan_date)
    by_sup = (
        heads.group_by("supplier_id", "currency")
        .agg(pl.len().alias("POs"), pl.col("lines").sum(), pl.col("value").sum())
        .sort("supplier_id")
    )
    table = Table(
        title=f"Suggested POs for {plan_date} (model v{plan['model_version']})",
        title_justify="left",
    )
    for col in ("supplier", "POs", "lines", "value"):
        table.add_column(col, justify="right" if col != "supplier" else "left")
    for row in by_sup.iter_rows(named=True):
        table.add_row(
            row["supplier_id"],
            str(row["POs"]),
            str(row["lines"]),
            f"{row['value']:,.2f} {row['currency']}",
        )
    table.add_row(
        "[bold]total",
        str(plan["purchase_orders"]),
        str(plan["lines"]),
        f"[bold]{plan['value']:,.2f} {plan['currency']}",
    )
    out.print(table)
    lines = rt.orders.po_lines(plan_date)
    if lines.height:
        render_explained(lines.sort("value", descending=True).head(3))
    erp, nxt = s["erp"], s["next_plan"]
    rec = erp["received"]
    out.print(
        f"\n[bold]ERP loop[/] (fake ERP on loopback, webhook): approved {erp['approved']} → "
        f"delivered {erp['delivered']} → acknowledged "
        f"{erp['acknowledged'].get('accepted', 0)} lines → received "
        f"{rec.get('accepted', 0)} lines; new stock positions "
        f"{erp['positions'].get('accepted', 0)}"
    )
    out.print(
        f"[bold]Next plan[/] {nxt['plan_date']}: {nxt['purchase_orders']} POs, "
        f"{nxt['lines']} lines, {nxt['value']:,.2f} {nxt['currency']}"
    )
    ex = nxt.get("example") or {}
    if ex:
        out.print(
            f"  {ex['store_id']} / {ex['sku_id']} ({ex.get('item_name') or ''}): ordered "
            f"{ex['ordered']}, on hand {ex['on_hand_before']:.0f} → "
            f"{(ex['on_hand_after'] or 0):.0f} after the receipt; the next plan orders "
            f"{ex['ordered_next']}"
        )
    p = s["paths"]
    out.print(
        f"\n[bold]Look next[/]\n  PO lines with explanations: {p['csv']}\n"
        f"  Forecast: {p['forecast']}\n  Backtest plot: {p['backtest_plot']}\n"
        f"  MLflow UI: python3 -m uv run mlflow ui --backend-store-uri {p['mlflow']}\n"
        f"  Review: python3 -m uv run replen orders list; … orders show ID --plot po.png\n"
        f"  ERP: … replen erp status; … replen rules lead-times; fake ERP in {p['fake_erp']}"
    )
    a = s.get("access") or {}
    if a.get("password_file"):
        out.print(
            f"\n[bold]Access[/]: this shell is signed in as {a['sub']} (session in "
            f"{a['credentials']}). Its password is in {a['password_file']} (only you can read "
            "it): sign in elsewhere with `replen login --username admin`; give tills, the ERP "
            "and planners their own identities with `replen clients create` / `replen users "
            "create` (see the README, Access)."
        )


# generate ------------------------------------------------------------------------------------
@app.command()
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write into.")] = Path(
        "synthetic"
    ),
    stores: Annotated[int, typer.Option(min=1)] = 5,
    skus: Annotated[int, typer.Option(min=1)] = 40,
    days: Annotated[int, typer.Option(min=14)] = 730,
    seed: int = 7,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic chain: POS lines (CSV + Parquet), rules, stock positions, item and
    store names, on-hand history — the files a retailer would load."""
    from replen.synthetic import generate as make

    chain = make(stores=stores, skus=skus, days=days, seed=seed)
    paths = chain.write(out_dir)
    csv = out_dir / "pos.csv"
    write_csv(chain.pos, csv)
    data = {
        "pos_lines": chain.pos.height,
        "series": stores * skus,
        "paths": {k: str(v) for k, v in {**paths, "pos_csv": csv}.items()},
    }
    emit(
        data,
        as_json,
        lambda: out.print(
            kv_table(
                "Generated",
                {"POS lines": chain.pos.height, "series": stores * skus, "directory": str(out_dir)},
            )
        ),
    )


@app.command()
def train(
    history: HistoryOpt = None,
    costly: Annotated[
        bool, typer.Option(help="Also try AutoETS/Theta where classes allow (much slower).")
    ] = False,
    freq: FreqOpt = "daily",
    engine: Annotated[
        str | None,
        typer.Option(help="local or dask (default: REPLEN_TRAIN_ENGINE, else local)."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(help="Dask scheduler, tcp://host:port (default: REPLEN_DASK_ADDRESS)."),
    ] = None,
    chunk_series: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Series per chunk (default: REPLEN_TRAIN_CHUNK_SERIES; unset, sized from "
            "the memory available: half of it at ~0.6 GB per 1,000 series, 1,000-5,000).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Backtest candidate models per series, pick champions, log and register in MLflow.

    Without --history the training frame comes from the Feast feature store (sales,
    prices, promotions, calendar, item attributes, point-in-time). Suspect blocks of
    history are masked first (`replen checks`). The new version becomes `champion` only if
    it beats the current champion on the same backtest windows (by
    REPLEN_CHAMPION_MARGIN); otherwise it is the `challenger`. Series are trained in chunks
    of bounded memory (the chosen size and its source are in the summary), here or on a
    Dask cluster (`--engine dask --address tcp://HOST:PORT`:
    the statistical candidates' backtests run on the cluster, the global boosted model and
    the profile model are fitted in this process; daily data only).
    """
    quiet_libraries()
    from jobs.retrain import HistorySource, retrain
    from jobs.runtime import Runtime
    from kernel.errors import InvalidInput
    from replen.settings import Settings

    settings = load_settings()
    if engine not in (None, "local", "dask"):
        raise InvalidInput(
            f"--engine {engine!r}: choose local or dask",
            field="engine",
            value=engine,
            rule="engine.choice",
        )
    chosen, where = engine or settings.train_engine, address or settings.dask_address
    if chosen == "dask" and not where:
        raise InvalidInput(
            "--engine dask needs the scheduler's address",
            field="address",
            value=None,
            rule="address.required",
            hint="pass --address tcp://HOST:PORT or set REPLEN_DASK_ADDRESS",
        )
    settings = Settings(**(settings.model_dump() | {"train_engine": chosen, "dask_address": where}))
    rt = Runtime(settings)
    with progress_bar(
        label="training",
        count="chunk {task.completed}/{task.total}",
        spinner=False,
        disable=as_json,
        transient=True,
    ) as progress:
        task = progress.add_task("train", total=None)
        source: HistorySource | None = None  # None: the Feast training frame
        if history is not None:
            source = HistorySource.of_file(history, freq)
        elif freq != "daily":
            history_frame(rt, history, freq)  # refuses: the POS lake holds daily sales
        result = retrain(
            rt,
            source,
            costly=costly,
            freq=freq,
            chunk_series=chunk_series,
            on_chunk=lambda done, total, _: progress.update(task, completed=done, total=total),
        )
    data = result.to_dict()
    flat = {k: v for k, v in data.items() if k != "metrics"} | dict(result.metrics)
    emit(data, as_json, lambda: out.print(kv_table("Retrain", flat)))


@app.command()
def backtest(
    history: HistoryOpt = None,
    horizon: Annotated[
        int | None, typer.Option(help="Backtest window in periods (default: settings / freq).")
    ] = None,
    windows: Annotated[int | None, typer.Option(min=1, help="Rolling origins.")] = None,
    costly: Annotated[bool, typer.Option(help="Also try AutoETS/Theta.")] = False,
    freq: FreqOpt = "daily",
    as_json: JsonOpt = False,
) -> None:
    """Backtest and select without registering: accuracy and calibration per demand class.

    Prints series, WAPE, RMSSE, bias (MASE with --json), and the out-of-sample coverage
    of the 90% and 95% quantiles of daily demand and of demand over the calibrated span
    (the protection period), per class and overall; then how each class's champion was
    chosen.
    """
    quiet_libraries()
    from jobs.retrain import backtest_only
    from jobs.runtime import Runtime

    rt = Runtime(load_settings())
    with console.status("reading the training frame"):
        frame = None if history is None and freq == "daily" else history_frame(rt, history, freq)
    with console.status("backtesting"):
        result = backtest_only(
            rt, frame, horizon=horizon, windows=windows, costly=costly, freq=freq
        )
    h = result.params["horizon"]
    m = result.metrics
    if as_json:
        print(
            json.dumps(
                {"params": result.params, "metrics": m, "seconds": round(result.seconds, 3)},
                default=str,
            )
        )
        return
    table = Table(
        title=f"Backtest: {h} periods × {result.params['n_windows']} windows",
        title_justify="left",
        caption="p90/p95: share of actual periods at or under the forecast's 90%/95% "
        "quantile; T80/T90/T95: the same for totals over "
        f"{result.params.get('protection_days', h)} periods (nominal 0.80/0.90/0.95).",
    )
    cols = (
        "series",
        "wape",
        "rmsse",
        "bias",
        "coverage.daily.q90",
        "coverage.daily.q95",
        "coverage.total.q80",
        "coverage.total.q90",
        "coverage.total.q95",
    )
    table.add_column("class")
    for label in ("n", "WAPE", "RMSSE", "bias", "p90", "p95", "T80", "T90", "T95"):
        table.add_column(label, justify="right")
    classes = sorted({k.split(".")[0] for k in m if k.endswith(".series")})
    for scope in [*classes, ""]:
        prefix = f"{scope}." if scope else ""
        table.add_row(
            scope or "[bold]all",
            *[
                f"{m[prefix + c]:.3f}"
                if prefix + c in m and c != "series"
                else (f"{m[prefix + c]:.0f}" if prefix + c in m else "")
                for c in cols
            ],
        )
    out.print(table)
    if result.selection.height:
        chosen = Table(
            title="Champion per class (the default yields only to a model better on most windows)",
            title_justify="left",
        )
        for col in ("class", "default", "champion", "wins", "score", "default score"):
            chosen.add_column(
                col, justify="right" if col in ("wins", "score", "default score") else "left"
            )
        for r in result.selection.iter_rows(named=True):
            chosen.add_row(
                r["demand_class"],
                r["default"],
                r["champion"],
                f"{r['wins']}/{r['windows']}",
                f"{r['champion_score']:.3f}",
                f"{r['default_score']:.3f}",
            )
        out.print(chosen)
    if result.checks.height:
        out.print(f"[yellow]{result.checks.height} suspect block(s) masked[/]: see `replen checks`")


@app.command()
def forecast(
    history: HistoryOpt = None,
    horizon: Annotated[int, typer.Option(min=1, max=366, help="Periods (days) ahead.")] = 28,
    quantiles: Annotated[str, typer.Option(help="Comma-separated levels in (0, 1).")] = (
        "0.5,0.8,0.9,0.95,0.99"
    ),
    out_path: Annotated[Path, typer.Option("--out", help="CSV or Parquet to write.")] = Path(
        "forecast.parquet"
    ),
    freq: FreqOpt = "daily",
    as_json: JsonOpt = False,
) -> None:
    """Forecast every series with the champion model: mean and quantiles per day."""
    quiet_libraries()
    from jobs.replenish import forecast_to_file, parse_quantiles
    from jobs.runtime import Runtime

    levels = parse_quantiles(quantiles)
    rt = Runtime(load_settings())
    frame = history_frame(rt, history, freq)
    with console.status("forecasting"):
        data = forecast_to_file(rt, frame, out_path, horizon=horizon, quantiles=levels, freq=freq)
    emit(data, as_json, lambda: out.print(kv_table("Forecast", data)))


@app.command()
def plan(
    plan_date: Annotated[
        str | None, typer.Option("--date", help="Plan date YYYY-MM-DD (default: after history).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Forecast with the champion and store the day's suggested POs.

    Replaces the day's unreviewed suggestions and supersedes open ones of earlier days.
    Sizes only store×SKUs with an item rule, a stock position and sales history; the
    others are listed as unplanned with their reason (`replen orders unplanned`).
    """
    quiet_libraries()
    from jobs.replenish import forecast_and_plan
    from jobs.runtime import Runtime

    when = date.fromisoformat(plan_date) if plan_date else None
    with console.status("planning"):
        summary = forecast_and_plan(Runtime(load_settings()), when)
    emit(summary.to_dict(), as_json, lambda: render_plan(summary.to_dict()))


def render_plan(data: dict[str, Any]) -> None:
    shown = {
        k: v
        for k, v in data.items()
        if k not in ("unplanned_items", "unplanned_by_reason", "forecast_path")
    }
    out.print(kv_table("Plan", shown))
    if data["unplanned"]:
        reasons = ", ".join(f"{k} {v}" for k, v in data["unplanned_by_reason"].items())
        out.print(
            f"[bold yellow]{data['unplanned']} store×SKU(s) not planned[/] ({reasons}): "
            "see [bold]replen orders unplanned[/]"
        )


RulesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--rules",
        help="Rules files or folders (YAML; suppliers.csv, items.csv, overrides.csv) to "
        "replay as the current rules; repeat for several. Default: the loaded rules.",
    ),
]
CandidateOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--candidate-rules",
        help="Rules files or folders to compare with the current rules; repeat for several.",
    ),
]


@app.command()
def simulate(
    history: HistoryOpt = None,
    rules: RulesOpt = None,
    candidate_rules: CandidateOpt = None,
    periods: Annotated[
        int,
        typer.Option(
            "--periods",
            "--days",
            min=7,
            help="Periods of --freq at the end of history to replay (a week is 7 days, a "
            "month 30; the replay walks days).",
        ),
    ] = 182,
    service_level: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="For lines without an override.")
    ] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the lead-time draws.")] = 0,
    forecast_every: Annotated[
        int, typer.Option(min=1, help="Days between forecasts during the replay.")
    ] = 7,
    plot: Annotated[
        Path | None, typer.Option(help="PNG: stock value and lost sales day by day.")
    ] = None,
    freq: FreqOpt = "daily",
    as_json: JsonOpt = False,
) -> None:
    """What-if on your own history: replay it, current vs candidate rules.

    Replays the last --periods periods as if Replen had planned them: champions
    trained on the history before, forecasts from the sales known each day,
    orders only on each supplier's order days with every rule (packs, MOQ,
    capacity, shelf life, supplier minimum, budget), lead times drawn with
    their spread, lost sales, expired units as waste. Prints per supplier and
    overall: fill rate, average stock value, POs, units ordered, stockout days.
    The latest result is kept for the planner's page (What-if). A weekly or
    monthly --history is replayed day by day, each period's units spread
    evenly over its days.
    """
    quiet_libraries()
    from jobs.runtime import Runtime
    from jobs.simulation import replay_days, replay_rules, save_what_if, what_if

    days = replay_days(periods, freq)  # before reading anything: a known frequency
    rt = Runtime(load_settings())
    current, candidate = replay_rules(rt, rules, candidate_rules)
    frame = history_frame(rt, history, freq)
    with progress_bar(
        count="{task.completed}/{task.total}", disable=as_json, transient=as_json
    ) as progress:
        tasks: dict[str, Any] = {}

        def on_progress(what: str, done: int, total: int) -> None:
            key = what if what.startswith("replaying") else "forecasts"
            if key not in tasks:
                tasks[key] = progress.add_task(what, total=total)
            progress.update(tasks[key], completed=done, description=what)

        report = what_if(
            frame,
            current,
            candidate,
            days=days,
            freq=freq,
            service_level=service_level,
            seed=seed,
            forecast_every=forecast_every,
            on_progress=on_progress,
        )
    if plot is not None:
        from replenishment.tradeoff import plot_replays

        runs = {"current": report.current}
        if report.candidate is not None:
            runs["candidate"] = report.candidate
        plot_replays(runs, plot)
    data = report.to_dict() | {"plot": str(plot) if plot else None}
    data["saved"] = str(save_what_if(rt, data))  # the planner's page shows the latest
    emit(data, as_json, lambda: _render_what_if(data))


def _render_what_if(data: dict[str, Any]) -> None:
    from rich import box

    runs = [name for name in ("current", "candidate") if name in data]
    table = Table(
        title=f"What-if {data['start']} … {data['end']}, {data['series']} series",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("supplier")
    table.add_column("rules")
    for col in ("fill", "stock value", "POs", "units", "stockout d"):
        table.add_column(col, justify="right")
    suppliers = [s["supplier_id"] for s in data["current"]["suppliers"]]
    if "candidate" in data:
        suppliers += [
            s["supplier_id"]
            for s in data["candidate"]["suppliers"]
            if s["supplier_id"] not in suppliers
        ]
    for supplier in [*sorted(suppliers), "all"]:
        for i, name in enumerate(runs):
            rows = [data[name]["total"], *data[name]["suppliers"]]
            row = next((r for r in rows if r["supplier_id"] == supplier), None)
            label = ("[bold]all[/]" if supplier == "all" else supplier) if i == 0 else ""
            if row is None:
                table.add_row(label, name, *["–"] * 5)
                continue
            table.add_row(
                label,
                name,
                f"{row['fill_rate']:.3f}",
                f"{row['avg_on_hand_value']:,.0f}",
                f"{row['orders']:,}",
                f"{row['units_ordered']:,.0f}",
                f"{row['stockout_days']:,}",
            )
    out.print(table)
    notes = []
    if data["unplanned_series"]:
        notes.append(f"{data['unplanned_series']} series without rules were not replayed")
    notes.append(f"initial stock {data['initial_stock']}")
    held = {n: data[n]["total"]["held"] for n in runs}
    waste = {n: data[n]["total"]["waste_units"] for n in runs}
    notes.append(
        "POs held under supplier minimum " + ", ".join(f"{n} {v}" for n, v in held.items())
    )
    notes.append("units wasted " + ", ".join(f"{n} {v:,.0f}" for n, v in waste.items()))
    out.print("; ".join(notes))
    if "change" in data:
        c = data["change"]
        pct = lambda v: "n/a" if v is None else f"{v:+.1%}"  # noqa: E731
        out.print(
            f"[bold]candidate vs current[/]: fill {c['fill_rate'] * 100:+.2f} pts, stock value "
            f"{pct(c['avg_on_hand_value'])}, POs {pct(c['orders'])}, units "
            f"{pct(c['units_ordered'])}, stockout days {pct(c['stockout_days'])}"
        )
    if data.get("plot"):
        out.print(f"plot: {data['plot']}")
