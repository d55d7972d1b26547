"""The store×SKU view of the planner: recent sales with stockout days, the demand class,
the forecast with its band, the open PO line and the stock projected to its delivery."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl

from jobs.review import item_names
from jobs.runtime import Runtime
from kernel.errors import Forbidden, NotFound

__all__ = ["item_view"]


def item_view(
    rt: Runtime,
    store_id: str,
    sku_id: str,
    *,
    days: int = 56,
    stores: set[str] | None = None,
) -> dict[str, Any]:
    """One store×SKU: recent daily sales with stockout days, its demand class, the forecast
    of the newest plan (mean and band, model and version), the open PO line and the stock
    projected day by day until the delivery after it (mean demand, lost sales at zero)."""
    from features.sales import daily_sales

    if stores is not None and store_id not in stores:
        raise Forbidden(f"store {store_id} is outside your stores")
    key = (pl.col("store_id") == store_id) & (pl.col("sku_id") == sku_id)
    newest = rt.lake.newest_sold_at()
    end = newest.date() if newest else date.today()
    since = end - timedelta(days=days + 1)
    hist = daily_sales(
        rt.lake.scan_events(since).filter(key), rt.lake.scan_inventory().filter(key), end=end
    )
    lines = rt.review.line_frame(store_id=store_id, sku_id=sku_id).sort("plan_date", "po_id")
    line = lines.row(-1, named=True) if lines.height else None
    plan_date = line["plan_date"] if line else rt.review.latest_plan_date()
    forecast = _forecast(rt, plan_date, store_id, sku_id)
    if hist.is_empty() and line is None and forecast.is_empty():
        raise NotFound(
            f"nothing known of store_id={store_id!r}, sku_id={sku_id!r}: no sales in the "
            f"last {days} days, no PO line, no forecast",
            hint="check the ids; GET /v1/orders lists planned lines",
        )
    calendar = pl.DataFrame(
        {"date": pl.date_range(end - timedelta(days=days - 1), end, "1d", eager=True)}
    )
    # Days before the window's first sale are days without sales, not missing days.
    recent = calendar.join(hist.drop("store_id", "sku_id"), on="date", how="left").with_columns(
        pl.col("units").fill_null(0.0), pl.col("stockout").fill_null(False)
    )
    klass = _demand_class(
        rt,
        plan_date,
        store_id,
        sku_id,
        recent.with_columns(pl.lit(store_id).alias("store_id"), pl.lit(sku_id).alias("sku_id")),
    )
    band = _band_column(forecast)
    out: dict[str, Any] = {
        "store_id": store_id,
        "sku_id": sku_id,
        "name": item_names(rt).get(sku_id),
        "stock_position": _stock_position(rt, store_id, sku_id),
        "demand_class": klass["demand_class"],
        "adi": klass["adi"],
        "cv2": klass["cv2"],
        "history": recent.select("date", "units", "stockout", "on_hand").to_dicts(),
        "stockout_days": int(recent["stockout"].sum()),
        "plan_date": plan_date,
        "model": forecast["model"][0] if forecast.height else None,
        "model_version": forecast["model_version"][0] if forecast.height else None,
        "band": {"low": "q50", "high": band} if band else None,
        "forecast": forecast.select(
            "date",
            "mean",
            *([pl.col("q50").alias("low"), pl.col(band).alias("high")] if band else []),
        ).to_dicts()
        if forecast.height
        else [],
        "line": None,
        "projection": [],
    }
    if line is not None:
        out["line"] = {
            k: line[k]
            for k in (
                "po_id",
                "status",
                "quantity",
                "suggested_quantity",
                "order_date",
                "expected_delivery",
                "position",
                "protection_days",
                "demand_mean",
            )
        }
        out["projection"] = _projection(line, forecast)
    return out


def _stock_position(rt: Runtime, store_id: str, sku_id: str) -> dict[str, Any] | None:
    """The newest stock position the ERP or store system sent for this store×SKU, if any."""
    latest = rt.positions.latest().filter(
        (pl.col("store_id") == store_id) & (pl.col("sku_id") == sku_id)
    )
    return latest.drop("store_id", "sku_id").row(0, named=True) if latest.height else None


def _demand_class(
    rt: Runtime, plan_date: date | None, store_id: str, sku_id: str, recent: pl.DataFrame
) -> dict[str, Any]:
    """The class the plan saw (written with it), else one from the recent sales."""
    from forecasting.demand import classify

    path = rt.settings.out_dir / f"classes_{plan_date}.parquet"
    if plan_date is not None and path.exists():
        found = (
            pl.scan_parquet(path)
            .filter((pl.col("store_id") == store_id) & (pl.col("sku_id") == sku_id))
            .collect()
        )
        if found.height:
            return found.row(0, named=True)
    return classify(recent).row(0, named=True)


def _forecast(rt: Runtime, plan_date: date | None, store_id: str, sku_id: str) -> pl.DataFrame:
    empty = pl.DataFrame(
        schema={"date": pl.Date, "mean": pl.Float64, "model": pl.String, "model_version": pl.String}
    )
    if plan_date is None:
        return empty
    path = rt.settings.out_dir / f"forecast_{plan_date}.parquet"
    if not path.exists():
        return empty
    return (
        pl.scan_parquet(path)
        .filter((pl.col("store_id") == store_id) & (pl.col("sku_id") == sku_id))
        .sort("date")
        .collect()
    )


def _band_column(forecast: pl.DataFrame) -> str | None:
    """The band's upper quantile: q95 if forecast, else the highest one up to it."""
    if "q50" not in forecast.columns:
        return None
    qs = sorted(
        (c for c in forecast.columns if c.startswith("q") and c[1:3].isdigit()),
        key=lambda c: float(c[1:].replace("_", ".")),
    )
    upper = [c for c in qs if float(c[1:].replace("_", ".")) <= 95 and c != "q50"]
    return upper[-1] if upper else None


def _projection(line: dict[str, Any], forecast: pl.DataFrame) -> list[dict[str, Any]]:
    """Stock day by day from the plan date to the end of the protection period: the
    position less the mean forecast, the order arriving on its expected delivery."""
    if line.get("protection_days") is None or line.get("position") is None:
        return []  # a line stored without its explanation: nothing to project from
    start, delivery = line["plan_date"], line["expected_delivery"]
    horizon = max(round(line["protection_days"]), (delivery - start).days + 1)
    daily = dict(forecast.select("date", "mean").iter_rows()) if forecast.height else {}
    rate = line["demand_mean"] / max(line["protection_days"], 1e-9)
    stock = float(line["position"])
    out = []
    for i in range(horizon):
        day = start + timedelta(days=i)
        if day == delivery:
            stock += line["quantity"]
        stock = max(stock - float(daily.get(day, rate)), 0.0)
        out.append({"date": day, "stock": round(stock, 2), "delivery": day == delivery})
    return out
