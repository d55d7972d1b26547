"""Daily forecast-and-plan: champion forecast → lead-time demand → PO suggestions in the DB."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from features.sales import last_date
from jobs.model_inputs import forecast_inputs
from jobs.runtime import NoSales, Runtime
from kernel.errors import InvalidInput, NotFound, NotReady
from kernel.files import write_csv, write_table
from replenishment.leadtime import lead_time_demand
from replenishment.planner import Suggestion, protection_spans, suggest
from replenishment.position import own_on_order, stock_position, triage
from replenishment.rules import Rules
from replenishment.worklist import held_lines

__all__ = [
    "PlanSummary",
    "forecast_and_plan",
    "forecast_to_file",
    "forecast_with_champion",
    "parse_quantiles",
    "plot_po",
    "write_demand_classes",
]


class NoChampion(NotReady):
    """No model has the ``champion`` alias yet."""


@dataclass(frozen=True)
class PlanSummary:
    plan_date: str
    model_version: str
    series: int
    planned: int
    purchase_orders: int
    lines: int
    units: int
    value: float
    currency: str
    replaced: int
    kept_reviewed: int
    held: int
    superseded: int
    unplanned: int
    unplanned_by_reason: dict[str, int]
    forecast_path: str
    csv_path: str
    unplanned_items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def forecast_with_champion(
    rt: Runtime,
    history: pl.DataFrame,
    horizon: int,
    quantiles: list[float] | None = None,
    freq: str = "daily",
) -> pl.DataFrame:
    """Forecast ``history`` with ``models:/<model>@champion`` loaded from MLflow.

    Daily forecasts read today's state and the planned days ahead (calendar, promotions,
    item attributes, price) from the Feast online store."""
    registry = rt.registry_for(freq)
    version = registry.champion_version()
    if version is None:
        raise NoChampion(
            f"no model {registry.model_name!r} has the alias 'champion' in "
            f"{rt.settings.tracking_uri}; run `replen train` first"
        )
    model = registry.load("champion")
    qs = quantiles or rt.settings.quantiles
    frame = history.select("store_id", "sku_id", "date", "units", "stockout")
    if freq == "daily":
        frame = forecast_inputs(rt, frame, horizon)
    out = model.predict(
        frame.to_pandas(),
        params={
            "horizon": horizon,
            "quantiles": ",".join(str(q) for q in qs),
            "model_version": version,
            "freq": freq,
        },
    )
    return pl.from_pandas(out).with_columns(pl.col("date").cast(pl.Date))


def parse_quantiles(text: str) -> list[float]:
    """``0.5,0.9,0.95`` → levels, each strictly between 0 and 1."""
    try:
        levels = [float(q) for q in text.split(",") if q.strip()]
    except ValueError:
        levels = []
    if not levels or any(not 0 < q < 1 for q in levels):
        raise InvalidInput(
            f"--quantiles {text!r} must be comma-separated levels strictly between 0 and 1",
            field="quantiles",
            value=text,
            rule="quantiles.levels",
            hint="e.g. --quantiles 0.5,0.9,0.95",
        )
    return levels


def forecast_to_file(
    rt: Runtime,
    history: pl.DataFrame,
    path: Path,
    *,
    horizon: int,
    quantiles: list[float],
    freq: str = "daily",
) -> dict[str, object]:
    """Forecast every series of ``history`` with the champion into ``path`` (CSV or Parquet,
    written whole or not at all); returns what was written."""
    frame = forecast_with_champion(rt, history, horizon, quantiles, freq)
    write_table(frame, path)
    return {
        "rows": frame.height,
        "series": frame.select("store_id", "sku_id").n_unique(),
        "horizon": horizon,
        "model_version": str(frame["model_version"][0]),
        "path": str(path),
    }


def plot_po(rt: Runtime, po_id: int, path: Path) -> Path:
    """Draw each line of PO ``po_id``: recent sales and the forecast it was sized on."""
    from replen.plots import plot_po_lines

    heads = rt.orders.purchase_orders().filter(pl.col("po_id") == po_id)
    if heads.is_empty():
        raise NotFound(f"no purchase order with id {po_id}", hint="see `replen orders list`")
    plan_date = heads["plan_date"][0]
    forecast = rt.settings.out_dir / f"forecast_{plan_date}.parquet"
    if not forecast.exists():
        raise NotReady(
            f"the forecast of plan date {plan_date} is missing ({forecast})",
            hint=f"run `replen plan --date {plan_date}` again",
        )
    lines = rt.orders.po_lines().filter(pl.col("po_id") == po_id)
    plot_po_lines(rt.history(), pl.read_parquet(forecast), lines, path)
    return path


def forecast_and_plan(
    rt: Runtime, plan_date: date | None = None, history: pl.DataFrame | None = None
) -> PlanSummary:
    """Make (or remake) the suggestions of ``plan_date`` (default: the day after history).

    Only store×SKUs with an item rule, a stock position as of the plan date and sales
    history are sized; the others are stored as unplanned with their reason. Open
    suggestions of earlier plan dates are superseded by this plan."""
    s = rt.settings
    history = history if history is not None else rt.history()
    if history.is_empty():
        raise NoSales("no sales history to plan from")
    last = last_date(history)
    plan_date = plan_date or (last + timedelta(days=1))
    rules = rt.rules()
    positions = rt.positions.latest(plan_date)
    history_keys = history.select("store_id", "sku_id").unique()
    keys = pl.concat([history_keys, positions.select("store_id", "sku_id")]).unique()
    plannable, unplanned = triage(keys, rules, positions, history_keys)
    on = ["store_id", "sku_id"]
    forecast: pl.DataFrame | None = None
    if plannable.is_empty():
        sug = _nothing(rules)
    else:
        planned_history = history.join(plannable, on=on, how="semi")
        spans = protection_spans(plannable, rules, plan_date, s.service_level)
        longest = spans.select(pl.col("protection_days").max().fill_null(1.0)).item()
        need = math.ceil(float(longest)) + (plan_date - last).days
        horizon = max(s.forecast_horizon_days, need)
        forecast = forecast_with_champion(rt, planned_history, horizon)
        planned_positions = positions.join(plannable, on=on, how="semi")
        window, shifted = _from_position(forecast, spans, planned_positions, plan_date, last)
        demand = lead_time_demand(window, shifted)
        oldest = planned_positions["as_of"].min()
        own_lines, receipts = rt.orders.own_orders(
            known_before=oldest if isinstance(oldest, datetime) else None
        )
        own = own_on_order(own_lines, receipts, planned_positions)
        sug = suggest(demand, stock_position(planned_positions, own), rules, spans)
    report = rt.orders.replace_suggestions(plan_date, sug, unplanned=unplanned)
    held = rt.review.replace_held(plan_date, held_lines(sug.evaluated, sug.held))

    out = s.out_dir
    forecast_path = out / f"forecast_{plan_date}.parquet"
    if forecast is not None:
        write_table(forecast, forecast_path)
        write_demand_classes(planned_history, out, plan_date)
    csv_path = out / f"po_suggestions_{plan_date}.csv"
    _write_csv(sug.lines, csv_path)
    return PlanSummary(
        plan_date=str(plan_date),
        model_version=str(forecast["model_version"][0]) if forecast is not None else "",
        series=keys.height,
        planned=plannable.height,
        purchase_orders=report.created,
        lines=sug.lines.height,
        units=int(sug.lines["quantity"].sum()),
        value=round(float(sug.lines["value"].sum()), 2),
        currency=str(sug.headers["currency"][0]) if sug.headers.height else s.currency,
        replaced=report.replaced,
        kept_reviewed=report.kept_reviewed,
        held=held,
        superseded=report.superseded,
        unplanned=unplanned.height,
        unplanned_by_reason=dict(unplanned.group_by("reason").len().sort("reason").iter_rows()),
        forecast_path=str(forecast_path),
        csv_path=str(csv_path),
        unplanned_items=unplanned.select("store_id", "sku_id", "reason").to_dicts(),
    )


def write_demand_classes(history: pl.DataFrame, out: Path, plan_date: date) -> Path:
    """Each series' demand class on the history the plan used (the planner's store×SKU
    view reads it instead of reclassifying a year of sales per request)."""
    from forecasting.demand import classify

    path = out / f"classes_{plan_date}.parquet"
    classes = classify(history).select("store_id", "sku_id", "demand_class", "adi", "cv2")
    return write_table(classes, path)


def _nothing(rules: Rules) -> Suggestion:
    """An empty plan (nothing could be sized), with the columns a stored plan needs."""
    headers = pl.DataFrame(
        schema={
            "supplier_id": pl.String,
            "store_id": pl.String,
            "order_date": pl.Date,
            "expected_delivery": pl.Date,
            "lines": pl.UInt32,
            "units": pl.Int64,
            "value": pl.Float64,
            "currency": pl.String,
            "model_version": pl.String,
        }
    )
    lines = headers.drop("lines", "units").with_columns(
        pl.lit(None, dtype=pl.String).alias("sku_id"),
        pl.lit(None, dtype=pl.Int64).alias("quantity"),
    )
    return Suggestion(headers=headers, lines=lines, evaluated=lines, held=headers)


def _from_position(
    forecast: pl.DataFrame,
    spans: pl.DataFrame,
    positions: pl.DataFrame,
    plan_date: date,
    last: date,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The demand a plan must cover starts after what the stock position already reflects.

    The forecast starts the day after sales history. A position taken on day D at or after
    18:00 UTC reflects D's sales (before that, only the days before D): forecast days up to
    then are already in the position and are dropped; days from there to the plan date
    are added to the protection period. With history up to yesterday and last night's
    position, nothing changes; with a newer position than history, no day is counted twice.
    """
    on = ["store_id", "sku_id"]
    starts = positions.select(
        *on,
        pl.max_horizontal(
            pl.lit(last + timedelta(days=1)),
            (pl.col("as_of") - pl.duration(hours=18)).dt.date() + pl.duration(days=1),
        ).alias("_start"),
    )
    window = forecast.join(starts, on=on).filter(pl.col("date") >= pl.col("_start")).drop("_start")
    shifted = (
        spans.join(starts, on=on)
        .with_columns(
            pl.col("protection_days")
            + (pl.lit(plan_date) - pl.col("_start")).dt.total_days().cast(pl.Float64)
        )
        .drop("_start")
    )
    return window, shifted


def _write_csv(lines: pl.DataFrame, path: Path) -> None:
    write_csv(lines.with_columns(pl.col(pl.Float64).round(3)), path)
