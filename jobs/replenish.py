"""Daily forecast-and-plan: champion forecast → lead-time demand → PO suggestions in the DB."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from features.sales import last_date
from jobs.model_inputs import forecast_inputs
from jobs.runtime import Runtime
from kernel.errors import NotReady
from replenishment.leadtime import lead_time_demand
from replenishment.planner import protection_spans, suggest

__all__ = ["PlanSummary", "forecast_and_plan", "forecast_with_champion"]


class NoChampion(NotReady):
    """No model has the ``champion`` alias yet."""


@dataclass(frozen=True)
class PlanSummary:
    plan_date: str
    model_version: str
    series: int
    purchase_orders: int
    lines: int
    units: int
    value: float
    currency: str
    replaced: int
    kept_reviewed: int
    forecast_path: str
    csv_path: str

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


def forecast_and_plan(
    rt: Runtime, plan_date: date | None = None, history: pl.DataFrame | None = None
) -> PlanSummary:
    """Make (or remake) the suggestions of ``plan_date`` (default: the day after history)."""
    s = rt.settings
    history = history if history is not None else rt.history()
    if history.is_empty():
        raise ValueError("no sales history: ingest POS data first (`replen ingest pos FILE`)")
    last = last_date(history)
    plan_date = plan_date or (last + timedelta(days=1))
    rules = rt.rules()
    keys = history.select("store_id", "sku_id").unique()
    spans = protection_spans(keys, rules, plan_date, s.service_level)
    longest = spans.select(pl.col("protection_days").max().fill_null(1.0)).item()
    need = math.ceil(float(longest)) + (plan_date - last).days
    horizon = max(s.forecast_horizon_days, need)
    forecast = forecast_with_champion(rt, history, horizon)
    demand = lead_time_demand(forecast, _shift_spans(spans, plan_date, last))
    sug = suggest(demand, _position(rt, plan_date), rules, spans)
    report = rt.orders.replace_suggestions(plan_date, sug)

    out = s.out_dir
    forecast_path = out / f"forecast_{plan_date}.parquet"
    forecast.write_parquet(forecast_path)
    csv_path = out / f"po_suggestions_{plan_date}.csv"
    _write_csv(sug.lines, csv_path)
    return PlanSummary(
        plan_date=str(plan_date),
        model_version=str(forecast["model_version"][0]),
        series=keys.height,
        purchase_orders=report.created,
        lines=sug.lines.height,
        units=int(sug.lines["quantity"].sum()),
        value=round(float(sug.lines["value"].sum()), 2),
        currency=str(sug.headers["currency"][0]) if sug.headers.height else s.currency,
        replaced=report.replaced,
        kept_reviewed=report.kept_reviewed,
        forecast_path=str(forecast_path),
        csv_path=str(csv_path),
    )


def _shift_spans(spans: pl.DataFrame, plan_date: date, last: date) -> pl.DataFrame:
    """The forecast starts the day after history; cover the gap up to the plan date too."""
    gap = (plan_date - last).days - 1
    return spans.with_columns(pl.col("protection_days") + gap)


def _write_csv(lines: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines.with_columns(pl.col(pl.Float64).round(3)).write_csv(path)


def _position(rt: Runtime, plan_date: date) -> pl.DataFrame:
    """Stock position: on hand and on order from the stock feed, plus POs approved here but
    not yet sent to the ERP."""
    stock = rt.stock()
    approved = rt.orders.open_on_order(plan_date)
    return (
        stock.join(approved, on=["store_id", "sku_id"], how="left")
        .with_columns((pl.col("on_order") + pl.col("po_on_order").fill_null(0.0)).alias("on_order"))
        .drop("po_on_order")
    )
