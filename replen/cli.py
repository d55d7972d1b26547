"""The `replen` command line: the demo, ingestion, features, training, forecasting, planning."""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from replen.settings import Settings

app = typer.Typer(
    help="Replen: demand forecasting and auto-replenishment for retailers.\n\n"
    "Start with `replen demo`; configuration comes from REPLEN_* environment variables "
    "or replen.toml in the working directory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ingest_app = typer.Typer(
    help="Load POS lines and stock snapshots into the lake.", no_args_is_help=True
)
features_app = typer.Typer(
    help="Daily sales and velocity in the Feast feature store.", no_args_is_help=True
)
orders_app = typer.Typer(help="Suggested purchase orders in the PO store.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
rules_app = typer.Typer(
    help="Replenishment rules: suppliers, items, store×SKU overrides.", no_args_is_help=True
)
jobs_app = typer.Typer(help="Scheduled jobs: list, run by hand, history.", no_args_is_help=True)
quarantine_app = typer.Typer(
    help="Rejected POS lines, kept with the rule they broke.", no_args_is_help=True
)
app.add_typer(ingest_app, name="ingest")
app.add_typer(features_app, name="features")
app.add_typer(orders_app, name="orders")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(jobs_app, name="jobs")
app.add_typer(rules_app, name="rules")
app.add_typer(db_app, name="db")

console = Console(stderr=True)
out = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
HistoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--history",
        help="Daily-sales file (CSV/Parquet: store_id, sku_id, date, units; optional "
        "stockout, on_hand, price) instead of the lake.",
        exists=True,
        dir_okay=False,
    ),
]


def _settings() -> Settings:
    return Settings()


def _quiet_libraries() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    for name in ("mlflow", "feast", "alembic", "statsforecast", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


@contextmanager
def _errors() -> Iterator[None]:
    """Turn expected failures into one red line and exit code 1 (no traceback)."""
    from kernel.errors import ReplenError

    try:
        yield
    except ReplenError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


def _emit(data: dict[str, Any], as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(data, default=str))
    else:
        render()


def _kv_table(title: str, data: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        table.add_row(str(key), f"{value:,.3f}" if isinstance(value, float) else str(value))
    return table


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
    _quiet_libraries()
    from replen.demo import STAGES, run_demo

    settings = _settings()
    with (
        _errors(),
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=as_json,
            disable=as_json,
        ) as progress,
    ):
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
    _render_demo(summary.to_dict(), settings)


def _render_demo(s: dict[str, Any], settings: Settings) -> None:
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
        _render_explained(lines.sort("value", descending=True).head(3))
    p = s["paths"]
    out.print(
        f"\n[bold]Look next[/]\n  PO lines with explanations: {p['csv']}\n"
        f"  Forecast: {p['forecast']}\n  Backtest plot: {p['backtest_plot']}\n"
        f"  MLflow UI: python3 -m uv run mlflow ui --backend-store-uri {p['mlflow']}\n"
        f"  Review: python3 -m uv run replen orders list; … orders show ID --plot po.png"
    )


def _render_explained(lines: Any) -> None:
    for row in lines.iter_rows(named=True):
        out.print(
            f"[bold]{row['store_id']} / {row['sku_id']}[/] ({row['supplier_id']}): "
            f"order [bold green]{row['quantity']}[/] = forecast over "
            f"{row['protection_days']:.1f} days {row['demand_mean']:.1f} + safety stock "
            f"{row['safety_stock']:.1f} → target {row['target_level']:.1f} − position "
            f"{row['position']:.0f} (on hand {row['on_hand']:.0f} + on order "
            f"{row['on_order']:.0f}) = need {row['raw_need']:.1f}; packs of "
            f"{row['pack_size']} → {row['after_pack']:.0f}; MOQ {row['moq_units']} → "
            f"{row['after_moq']:.0f}"
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
    """Write a synthetic chain: POS lines (CSV + Parquet), suppliers, items, stock, inventory."""
    from replen.synthetic import generate as make

    with _errors():
        chain = make(stores=stores, skus=skus, days=days, seed=seed)
        paths = chain.write(out_dir)
        csv = out_dir / "pos.csv"
        chain.pos.write_csv(csv)
    data = {
        "pos_lines": chain.pos.height,
        "series": stores * skus,
        "paths": {k: str(v) for k, v in {**paths, "pos_csv": csv}.items()},
    }
    _emit(
        data,
        as_json,
        lambda: out.print(
            _kv_table(
                "Generated",
                {"POS lines": chain.pos.height, "series": stores * skus, "directory": str(out_dir)},
            )
        ),
    )


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
    _quiet_libraries()
    from features.mapping import apply_mapping, parse_mapping
    from jobs.refresh import ingest_pos
    from jobs.runtime import Runtime
    from replen.io import read_table

    with _errors():
        spec = parse_mapping(mapping, map_ or [], timezone)
        rt = Runtime(_settings())
        with console.status(f"reading {file}", spinner="dots"):
            raw = apply_mapping(read_table(file, strings=True), spec)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} lines"),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
            transient=True,
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
    _emit(data, as_json, lambda: out.print(_kv_table(f"POS ingest of {file.name}", data)))


@ingest_app.command("inventory")
def ingest_inventory_cmd(
    file: Annotated[
        Path, typer.Argument(help="store_id, sku_id, as_of, on_hand.", exists=True, dir_okay=False)
    ],
    as_json: JsonOpt = False,
) -> None:
    """Append stock snapshots (zero on hand marks a stockout day)."""
    from features.inventory import validate_inventory
    from jobs.refresh import ingest_inventory
    from jobs.runtime import Runtime
    from replen.io import read_table

    with _errors():
        rows = ingest_inventory(Runtime(_settings()), validate_inventory(read_table(file)))
    _emit({"rows": rows}, as_json, lambda: out.print(f"{rows:,} snapshots committed"))


# features ------------------------------------------------------------------------------------
@features_app.command("refresh")
def features_refresh(as_json: JsonOpt = False) -> None:
    """Recompute velocity from the lake, write Feast's offline table, materialize online."""
    _quiet_libraries()
    from jobs.refresh import refresh_features
    from jobs.runtime import Runtime

    with _errors(), console.status("refreshing features"):
        result = refresh_features(Runtime(_settings()))
    _emit(result.to_dict(), as_json, lambda: out.print(_kv_table("Features", result.to_dict())))


@features_app.command("rebuild")
def features_rebuild(as_json: JsonOpt = False) -> None:
    """Recreate Feast entirely from the lake (registry, offline table, online store)."""
    _quiet_libraries()
    from jobs.refresh import rebuild_features
    from jobs.runtime import Runtime

    with _errors(), console.status("rebuilding features from the lake"):
        result = rebuild_features(Runtime(_settings()))
    _emit(result.to_dict(), as_json, lambda: out.print(_kv_table("Rebuilt", result.to_dict())))


@features_app.command("show")
def features_show(
    store_id: Annotated[str, typer.Argument(help="Store id.")],
    sku_id: Annotated[str, typer.Argument(help="SKU id.")],
    as_json: JsonOpt = False,
) -> None:
    """Read one store×SKU's velocity from the Feast online store."""
    _quiet_libraries()
    import polars as pl

    from jobs.runtime import Runtime

    with _errors():
        frame = Runtime(_settings()).features.online_velocity(
            pl.DataFrame({"store_id": [store_id], "sku_id": [sku_id]})
        )
    row = frame.row(0, named=True)
    _emit(row, as_json, lambda: out.print(_kv_table(f"Velocity {store_id}/{sku_id}", row)))


# train / forecast / plan ---------------------------------------------------------------------
FreqOpt = Annotated[
    str,
    typer.Option(
        help="daily, weekly or monthly: what one row of --history covers (its date "
        "marks the period; weeks may start on any weekday)."
    ),
]


def _history(rt: Any, history: Path | None, freq: str = "daily") -> Any:
    from replen.io import read_history

    if history is None and freq != "daily":
        raise ValueError(f"--freq {freq} needs --history: the POS lake holds daily sales")
    return read_history(history, freq) if history is not None else rt.history()


@app.command()
def train(
    history: HistoryOpt = None,
    costly: Annotated[
        bool, typer.Option(help="Also try AutoETS/Theta where classes allow (much slower).")
    ] = False,
    freq: FreqOpt = "daily",
    as_json: JsonOpt = False,
) -> None:
    """Backtest candidate models per series, pick champions, log and register in MLflow.

    The new version becomes `champion` only if it beats the current champion on the same
    backtest windows (by REPLEN_CHAMPION_MARGIN); otherwise it is the `challenger`.
    """
    _quiet_libraries()
    from jobs.retrain import retrain
    from jobs.runtime import Runtime

    with _errors():
        rt = Runtime(_settings())
        with console.status("training"):
            result = retrain(rt, _history(rt, history, freq), costly=costly, freq=freq)
    data = result.to_dict()
    flat = {k: v for k, v in data.items() if k != "metrics"} | dict(result.metrics)
    _emit(data, as_json, lambda: out.print(_kv_table("Retrain", flat)))


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

    Prints series, WAPE, RMSSE, MASE, bias, and the out-of-sample coverage of the 90% and
    95% quantiles of daily demand and of demand over the window, per class and overall.
    """
    _quiet_libraries()
    from forecasting.candidates import freq_of
    from forecasting.train import train as fit
    from jobs.runtime import Runtime

    with _errors():
        settings = _settings()
        rt = Runtime(settings)
        frame = _history(rt, history, freq)
        h = horizon or (
            settings.backtest_horizon_days if freq == "daily" else freq_of(freq).backtest
        )
        with console.status("backtesting"):
            result = fit(
                frame,
                horizon=h,
                n_windows=windows or settings.backtest_windows,
                costly=costly,
                freq=freq,
            )
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
        "quantile; T90/T95: the same for the window total (nominal 0.90/0.95).",
    )
    cols = (
        "series",
        "wape",
        "rmsse",
        "mase",
        "bias",
        "coverage.daily.q90",
        "coverage.daily.q95",
        "coverage.total.q90",
        "coverage.total.q95",
    )
    table.add_column("class")
    for label in ("n", "WAPE", "RMSSE", "MASE", "bias", "p90", "p95", "T90", "T95"):
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
    _quiet_libraries()
    from jobs.replenish import forecast_with_champion
    from jobs.runtime import Runtime

    with _errors():
        try:
            qs = [float(q) for q in quantiles.split(",")]
        except ValueError:
            raise ValueError(f"--quantiles {quantiles!r} must be numbers like 0.5,0.9") from None
        if any(not 0 < q < 1 for q in qs):
            raise ValueError(f"--quantiles {quantiles!r}: each must lie strictly in (0, 1)")
        rt = Runtime(_settings())
        with console.status("forecasting"):
            frame = forecast_with_champion(rt, _history(rt, history, freq), horizon, qs, freq)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if out_path.suffix == ".csv":
            frame.write_csv(out_path)
        else:
            frame.write_parquet(out_path)
    data = {
        "rows": frame.height,
        "series": frame.select("store_id", "sku_id").n_unique(),
        "horizon": horizon,
        "model_version": frame["model_version"][0],
        "path": str(out_path),
    }
    _emit(data, as_json, lambda: out.print(_kv_table("Forecast", data)))


@app.command()
def plan(
    plan_date: Annotated[
        str | None, typer.Option("--date", help="Plan date YYYY-MM-DD (default: after history).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Forecast with the champion and store today's suggested POs (replaces unreviewed ones)."""
    _quiet_libraries()
    from jobs.replenish import forecast_and_plan
    from jobs.runtime import Runtime

    with _errors():
        when = date.fromisoformat(plan_date) if plan_date else None
        with console.status("planning"):
            summary = forecast_and_plan(Runtime(_settings()), when)
    _emit(summary.to_dict(), as_json, lambda: out.print(_kv_table("Plan", summary.to_dict())))


@app.command()
def simulate(
    history: HistoryOpt = None,
    days: Annotated[int, typer.Option(min=14, help="Days at the end of history to replay.")] = 182,
    lead_time: Annotated[
        int | None, typer.Option(help="Lead time in days (default: from the supplier rules).")
    ] = None,
    review: Annotated[int, typer.Option(min=1, help="Review period in days.")] = 7,
    fill_target: Annotated[float, typer.Option(help="Fill rate to compare policies at.")] = 0.95,
    plot: Annotated[Path, typer.Option(help="Trade-off curve PNG.")] = Path(
        "simulation_tradeoff.png"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Replay history day by day: forecast-driven (R,S) vs static min/max.

    Sweeps the service level of (R,S) and the cover of min/max, reports fill rate, cycle
    service level, average inventory, stockout days and orders for each, the inventory each
    needs at --fill-target, and draws the service/inventory trade-off (PNG).
    """
    _quiet_libraries()
    import numpy as np

    from jobs.runtime import Runtime
    from jobs.simulation import run_simulation

    with _errors():
        rt = Runtime(_settings())
        frame = _history(rt, history)
        keys = frame.select("store_id", "sku_id").unique().sort("store_id", "sku_id")
        cost = pack = None
        lead: Any = lead_time if lead_time is not None else 3
        if history is None and lead_time is None:
            rules = rt.rules()
            per = (
                keys.join(rules.items, on="sku_id", how="left")
                .join(rules.suppliers, on="supplier_id", how="left")
                .sort("store_id", "sku_id")
            )
            lead = np.ceil(per["lead_time_mean"].fill_null(3.0).to_numpy()).astype(int)
            cost = per["unit_cost"].fill_null(1.0).to_numpy()
            pack = per["pack_size"].fill_null(1).to_numpy()
        with console.status("simulating") as status:
            report = run_simulation(
                frame,
                days=days,
                lead_time=lead,
                review_period=review,
                unit_cost=cost,
                pack_size=pack,
                fill_target=fill_target,
                plot=plot,
                on_step=lambda m: status.update(m),
            )
    data = report.to_dict()
    if as_json:
        print(json.dumps(data, default=float))
        return
    table = Table(
        title=f"Simulation of the last {days} days, {report.series} series", title_justify="left"
    )
    for col in (
        "policy",
        "setting",
        "fill rate",
        "cycle SL",
        "avg on hand (value)",
        "stockout days",
        "orders",
    ):
        table.add_column(col, justify="right")
    for r in report.runs:
        table.add_row(
            r["policy"],
            f"{r['setting']:g}",
            f"{r['fill_rate']:.3f}",
            f"{r['cycle_service_level']:.3f}",
            f"{r['avg_on_hand_value']:,.1f}",
            str(r["stockout_days"]),
            str(r["orders"]),
        )
    out.print(table)
    for policy, at in report.at_target.items():
        if at:
            out.print(
                f"{policy}: {fill_target:.0%} fill needs {at['avg_on_hand_value']:,.1f} "
                f"on hand (setting {at['setting']:.3f})"
            )
    if report.inventory_saving is not None:
        out.print(
            f"[bold]forecast (R,S) holds {report.inventory_saving:.1%} less inventory "
            f"than min/max at the same fill rate[/]; curve: {report.plot}"
        )


@orders_app.command("list")
def orders_list(
    plan_date: Annotated[str | None, typer.Option("--date", help="Only this plan date.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List suggested purchase orders."""
    from jobs.runtime import Runtime

    with _errors():
        when = date.fromisoformat(plan_date) if plan_date else None
        heads = Runtime(_settings()).orders.purchase_orders(when)
    if as_json:
        print(json.dumps({"purchase_orders": heads.to_dicts()}, default=str))
        return
    table = Table(title="Purchase orders", title_justify="left")
    for col in heads.columns:
        table.add_column(col)
    for row in heads.iter_rows():
        table.add_row(*[str(v) for v in row])
    out.print(table)


# serve / monitor -----------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API worker processes (uvicorn).")] = 1,
    pusher: Annotated[
        bool,
        typer.Option(
            help="Run the velocity pusher here; --no-pusher when `replen push-velocity` "
            "runs as its own service."
        ),
    ] = True,
) -> None:
    """Run the HTTP service: POST /v1/pos/events, POST /v1/inventory, /metrics, /v1/monitor.

    Requests are answered once durable in the lake; one velocity pusher process (whatever
    the number of workers) then pushes the touched store×SKUs' velocity online.
    """
    _quiet_libraries()
    import uvicorn

    from replen.api.pusher import VelocityPusher
    from replen.app import create_app

    settings = _settings()
    if workers == 1:
        uvicorn.run(create_app(settings, pusher=pusher), host=host, port=port, log_level="warning")
        return
    runner = VelocityPusher(settings) if pusher else None
    if runner is not None:
        runner.start()
    try:
        uvicorn.run(
            "replen.app:create_worker_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
        )
    finally:
        if runner is not None:
            runner.stop()


@app.command()
def monitor(
    record: Annotated[bool, typer.Option(help="Write alert records to the database.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Check POS freshness per store and the reject ratio; raise alerts past thresholds."""
    from jobs.monitor import run_monitor
    from jobs.runtime import Runtime

    with _errors():
        report = run_monitor(Runtime(_settings()), record=record)
    data = report.to_dict()
    if as_json:
        print(json.dumps(data, default=str))
        return
    table = Table(title=f"POS freshness at {report.checked_at}", title_justify="left")
    for col in ("store", "newest event", "lag"):
        table.add_column(col)
    for row in report.stores:
        table.add_row(str(row["store_id"]), str(row["newest"]), f"{row['lag_seconds']:,.0f}s")
    out.print(table)
    out.print(
        f"Rejected {report.rejected:,} of {report.received:,} lines in the last "
        f"{report.window_minutes:g} min ({report.reject_ratio:.3%})"
    )
    for alert in report.alerts:
        out.print(f"[bold red]ALERT[/] {alert}")


# db ------------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Migrate the database (REPLEN_DATABASE_URL) to the newest schema; safe to repeat."""
    from replen.db import upgrade

    with _errors():
        settings = _settings()
        settings.ensure_dirs()
        revision = upgrade(settings.db_url)
    _emit({"revision": revision}, as_json, lambda: out.print(f"database at revision {revision}"))


@db_app.command("current")
def db_current(as_json: JsonOpt = False) -> None:
    """Show the database's schema revision."""
    from replen.db import current

    revision = current(_settings().db_url)
    _emit({"revision": revision}, as_json, lambda: out.print(f"revision: {revision}"))


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

    with _errors():
        rules = load_rules(files)
    _emit(
        {"valid": True, **rules.summary()},
        as_json,
        lambda: out.print(_kv_table("Rules are valid", rules.summary())),
    )


@rules_app.command("load")
def rules_load(files: RulesFiles, as_json: JsonOpt = False) -> None:
    """Validate rules files and replace the stored rules with them (all or nothing)."""
    from jobs.runtime import Runtime
    from replenishment.rules import load_rules

    with _errors():
        rules = load_rules(files)
        counts = Runtime(_settings()).rules_store.save(rules, ", ".join(map(str, files)))
    _emit({"loaded": True, **counts}, as_json, lambda: out.print(_kv_table("Rules loaded", counts)))


@rules_app.command("show")
def rules_show(as_json: JsonOpt = False) -> None:
    """Show the stored suppliers, items and overrides."""
    from jobs.runtime import Runtime

    with _errors():
        rt = Runtime(_settings())
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
    out.print(f"Loaded {last.get('loaded_at', '?')} from {last.get('source', '?')}")
    for name in ("suppliers", "items", "overrides"):
        frame = getattr(rules, name)
        table = Table(title=f"{name} ({frame.height})", title_justify="left")
        for col in frame.columns:
            table.add_column(col)
        for row in frame.head(30).iter_rows():
            table.add_row(*["" if v is None else str(v) for v in row])
        out.print(table)


# scheduler / jobs ----------------------------------------------------------------------------
@app.command()
def scheduler() -> None:
    """Run the scheduler (APScheduler, persistent job store) until Ctrl-C or SIGTERM.

    Schedules come from REPLEN_SCHEDULES (JSON: job → crontab or 'every <N>s') in
    REPLEN_SCHEDULER_TIMEZONE. Only one scheduler may run per job store (database).
    """
    _quiet_libraries()
    import logging

    from jobs.scheduler import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = _settings()
    with _errors():
        run_scheduler(
            settings,
            on_start=lambda names: console.print(
                f"scheduler running: {', '.join(names)} (Ctrl-C to stop)"
            ),
        )


@jobs_app.command("list")
def jobs_list(as_json: JsonOpt = False) -> None:
    """Every job, its schedule and its last run."""
    from jobs.catalog import JOBS, describe
    from jobs.ledger import RunLedger

    settings = _settings()
    ledger = RunLedger(settings.db_url)
    rows = []
    for name in JOBS:
        last = ledger.history(name, limit=1)
        rows.append(
            {
                "job": name,
                "schedule": settings.schedules.get(name, "(not scheduled)"),
                "last_slot": last[0]["slot"] if last else None,
                "last_status": last[0]["status"] if last else None,
                "description": describe(name),
            }
        )
    if as_json:
        print(json.dumps({"jobs": rows}, default=str))
        return
    table = Table(title=f"Jobs ({settings.scheduler_timezone})", title_justify="left")
    for col in ("job", "schedule", "last_slot", "last_status", "description"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            *[
                str(row[c] or "")
                for c in ("job", "schedule", "last_slot", "last_status", "description")
            ]
        )
    out.print(table)


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="refresh, retrain, replenish, monitor or probe.")],
    as_json: JsonOpt = False,
) -> None:
    """Run a job now, by hand; the run is recorded in the ledger."""
    _quiet_libraries()
    from jobs.ledger import RunLedger
    from jobs.scheduler import run_job_now

    settings = _settings()
    with _errors():
        slot, status = run_job_now(settings, name)
    record = RunLedger(settings.db_url).history(name, limit=1)[0]
    _emit(record, as_json, lambda: out.print(_kv_table(f"{name} {slot}", record)))
    if status == "failed":
        raise typer.Exit(1)


@jobs_app.command("history")
def jobs_history(
    name: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recent job runs, newest first."""
    from jobs.ledger import RunLedger

    rows = RunLedger(_settings().db_url).history(name, limit)
    if as_json:
        print(json.dumps({"runs": rows}, default=str))
        return
    table = Table(title="Job runs", title_justify="left")
    for col in ("job", "slot", "status", "attempts", "started_at", "finished_at", "error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            *[
                str(r[c] or "")
                for c in ("job", "slot", "status", "attempts", "started_at", "finished_at", "error")
            ]
        )
    out.print(table)


# quarantine ----------------------------------------------------------------------------------
@quarantine_app.command("list")
def quarantine_list(
    rule: Annotated[str | None, typer.Option(help="Only this rule, e.g. quantity.bound.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Lines to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Count rejected lines by rule and show the latest ones."""
    import polars as pl

    from jobs.runtime import Runtime

    q = Runtime(_settings()).lake.quarantine()
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
    out.print(_kv_table(f"Quarantine: {q.height:,} lines", counts or {"(empty)": ""}))
    table = Table(title_justify="left")
    for col in ("batch_id", "event_id", "rule", "value", "message"):
        table.add_column(col, overflow="fold")
    for row in q.tail(limit).iter_rows(named=True):
        table.add_row(
            row["batch_id"], str(row["event_id"]), row["rule"], str(row["value"]), row["message"]
        )
    out.print(table)


@quarantine_app.command("show")
def quarantine_show(
    event_id: Annotated[str, typer.Argument(help="The rejected line's event_id.")],
    as_json: JsonOpt = False,
) -> None:
    """Show every quarantine record of one event id, with its raw payload."""
    import polars as pl

    from jobs.runtime import Runtime

    q = Runtime(_settings()).lake.quarantine().filter(pl.col("event_id") == event_id)
    if q.is_empty():
        console.print(f"[bold red]error:[/] no quarantined line has event_id {event_id!r}")
        raise typer.Exit(1)
    rows = q.to_dicts()
    if as_json:
        print(json.dumps({"records": rows}, default=str))
        return
    for row in rows:
        out.print(_kv_table(f"{event_id} ({row['batch_id']})", row))


@quarantine_app.command("export")
def quarantine_export(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file to write.")],
    as_json: JsonOpt = False,
) -> None:
    """Write every quarantined line (rule, message, raw payload) to a file."""
    from jobs.runtime import Runtime

    q = Runtime(_settings()).lake.quarantine()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        q.write_parquet(path)
    else:
        q.write_csv(path)
    _emit(
        {"rows": q.height, "path": str(path)},
        as_json,
        lambda: out.print(f"{q.height:,} quarantined lines → {path}"),
    )


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

    with _errors():
        rt = Runtime(_settings())
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
    _render_explained(lines)
    if plot is not None:
        out.print(f"plot: {plot}")
    for h in trail:
        out.print(f"{h['at']:%Y-%m-%d %H:%M} {h['actor']}: {h['action']} {h['detail']}")


def _transition(po_id: int, to: str, actor: str, reason: str | None, as_json: bool) -> None:
    from jobs.runtime import Runtime

    with _errors():
        before = Runtime(_settings()).orders.transition(po_id, to, actor, reason)
    _emit(
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

    with _errors():
        old, new = Runtime(_settings()).orders.edit_line(
            po_id, sku_id, quantity, actor, reason or ""
        )
    _emit(
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

    with _errors():
        store = Runtime(_settings()).orders
        lines = store.po_lines().filter(pl.col("status") == "approved")
        cols = ["po_id", "supplier_id", "store_id", "sku_id", "quantity", "unit_cost", "value"]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        lines.select(cols).write_csv(tmp)
        os.replace(tmp, path)  # the file is whole before any PO is marked exported
        ids = sorted(set(lines["po_id"].to_list())) if lines.height else []
        for po_id in ids:
            store.transition(po_id, "exported", actor, detail={"file": str(path)})
    _emit(
        {"purchase_orders": len(ids), "lines": lines.height, "path": str(path)},
        as_json,
        lambda: out.print(f"{len(ids)} POs, {lines.height} lines → {path}"),
    )


if __name__ == "__main__":  # pragma: no cover
    app()


# scale-out: the velocity pusher and the POS stream as their own processes -------------------
@app.command("push-velocity")
def push_velocity_cmd() -> None:
    """Follow the lake and push fresh velocity to the Feast online store (one per deployment).

    Runs until SIGTERM or Ctrl-C; start the API with `replen serve --no-pusher` then.
    """
    _quiet_libraries()
    import signal
    import threading

    from replen.api.pusher import pusher_main

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    settings = _settings()
    console.print(f"pushing velocity from {settings.lake_dir} to {settings.online_store}")
    pusher_main(settings.model_dump(), stop)
