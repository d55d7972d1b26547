"""The forecasting stage's inputs through Feast: reference files in, training frames and the
online state out.

- ``ingest_reference``: a calendar, price list, promotions or item-attributes file,
  validated and merged, then Feast refreshed;
- ``refresh_inputs``: daily model inputs from the lake and the reference tables into the
  Feast offline tables, and the current state into the online store;
- ``training_history``: the retrain's frame from ``get_historical_features``
  (point-in-time correct), refreshed first when the lake or a reference file moved;
- ``forecast_inputs``: the daily forecast's input: sales history from the lake, today's
  state and the planned days ahead from the online store.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from features.inputs import calendar_days, daily_inputs, promo_plan
from features.reference import KINDS, UpsertReport, validate
from features.sales import last_date
from jobs.runtime import Runtime

__all__ = [
    "InputsRefresh",
    "data_exceptions",
    "forecast_inputs",
    "ingest_reference",
    "item_attributes",
    "latest_checks",
    "refresh_inputs",
    "save_checks",
    "training_history",
]

_MARKER = "inputs_as_of.txt"


@dataclass(frozen=True)
class InputsRefresh:
    """What one refresh of the model inputs wrote."""

    as_of: str
    rows: dict[str, int]
    feature_service: str
    version: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def ingest_reference(rt: Runtime, kind: str, raw: pl.DataFrame, source: str) -> UpsertReport:
    """Validate a reference file (all or nothing) and merge it by key. Feast is refreshed
    by the next ``refresh_inputs`` (the retrain does it when it sees the change)."""
    rows = validate(kind, raw, source)
    return rt.reference.upsert(kind, rows)


def data_exceptions(rt: Runtime, history: pl.DataFrame | None = None) -> pl.DataFrame:
    """Blocks of sales history that are not demand (a broken extract, an outage, prices
    gone missing), per chain, store and series: what the retrain masks, for a report or
    the planner's data-exceptions view. See :func:`forecasting.checks.find_suspect_blocks`."""
    from forecasting.checks import find_suspect_blocks

    history = history if history is not None else rt.history()
    if history.is_empty():
        return find_suspect_blocks(history)
    if "price" in history.columns and rt.reference.load("prices") is not None:
        # A price list fills prices the tills did not record: judge gaps on the list too.
        history = history.drop("price").join(
            daily_inputs(history, prices=rt.reference.load("prices")).select(
                "store_id", "sku_id", "date", "price"
            ),
            on=["store_id", "sku_id", "date"],
            how="left",
        )
    return find_suspect_blocks(history)


CHECKS_FILE = "data_checks.parquet"


def save_checks(rt: Runtime, blocks: pl.DataFrame) -> Path:
    """Keep what the latest daily retrain masked (``<out_dir>/data_checks.parquet``, written
    atomically) for the planner's data exceptions. Chunks each test their own slice of
    the chain, so a block found by several is kept once."""
    from forecasting.checks import CHECK_COLUMNS, no_blocks
    from kernel.files import write_parquet

    if not blocks.width:
        blocks = no_blocks()
    keys = ["scope", "store_id", "sku_id", "start", "end", "rule"]
    blocks = blocks.select(CHECK_COLUMNS).unique(subset=keys, keep="first", maintain_order=True)
    return write_parquet(blocks, rt.settings.out_dir / CHECKS_FILE)


def latest_checks(rt: Runtime) -> pl.DataFrame | None:
    """The suspect blocks the latest daily retrain masked; None before the first one."""
    path = rt.settings.out_dir / CHECKS_FILE
    return pl.read_parquet(path) if path.exists() else None


def _state_key(rt: Runtime, as_of: date) -> str:
    """The lake's newest day, the reference tables' contents and the item master's
    departments and categories: inputs change with them."""
    digest = hashlib.sha256(as_of.isoformat().encode())
    for kind in KINDS:
        path = rt.reference.path(kind)
        if path.exists():
            digest.update(f"{kind}:{path.stat().st_mtime_ns}:{path.stat().st_size}".encode())
    master = _master_attributes(rt)
    digest.update(f"items:{master.height}:{master.hash_rows().sum()}".encode())
    return digest.hexdigest()[:16]


def item_attributes(rt: Runtime) -> pl.DataFrame | None:
    """Department and category per SKU as model inputs: the attributes file (`replen ingest
    attributes`) first, then the ERP's item master (`replen ingest items`) for the SKUs the
    file lacks; None when neither has any."""
    ref = rt.reference.load("attributes")
    master = _master_attributes(rt)
    if master.is_empty():
        return ref
    if ref is None:
        return master
    cols = ["sku_id", "department", "category"]
    return pl.concat([ref, master.join(ref, on="sku_id", how="anti").select(cols)], how="diagonal")


def _master_attributes(rt: Runtime) -> pl.DataFrame:
    items = rt.positions.master("items").select("sku_id", "department", "category")
    return items.filter(pl.col("department").is_not_null() | pl.col("category").is_not_null())


def refresh_inputs(rt: Runtime, daily: pl.DataFrame | None = None) -> InputsRefresh:
    """Recompute the daily inputs from the lake (the truth) and the reference tables,
    replace the Feast offline tables and load today's state online. Called by
    :func:`jobs.refresh.refresh_features`, which holds the online store's writer lock."""
    from features.repo.definitions import FORECASTING_SERVICE, FORECASTING_SERVICE_VERSION

    daily = daily if daily is not None else rt.history()
    if daily.is_empty():
        raise ValueError("the POS lake is empty: ingest sales first (`replen ingest pos FILE`)")
    as_of = last_date(daily)
    ref = {kind: rt.reference.load(kind) for kind in KINDS}
    ref["attributes"] = item_attributes(rt)
    inputs = daily_inputs(
        daily,
        calendar=ref["calendar"],
        prices=ref["prices"],
        promotions=ref["promotions"],
        attributes=ref["attributes"],
    )
    keys = daily.select("store_id", "sku_id").unique()
    stores = keys["store_id"].unique().sort().to_list()
    attributes = ref["attributes"]
    features = rt.features
    features.apply_once()
    written = features.write_inputs(
        daily=inputs,
        calendar=calendar_days(ref["calendar"], stores),
        attributes=attributes.select("sku_id", "department", "category")
        if attributes is not None
        else None,
        promo_plan=promo_plan(ref["promotions"], keys, as_of + timedelta(days=1)),
        as_of=as_of,
    )
    features.materialize_inputs(as_of)
    (rt.settings.feast_dir / _MARKER).write_text(_state_key(rt, as_of))
    return InputsRefresh(str(as_of), written, FORECASTING_SERVICE, FORECASTING_SERVICE_VERSION)


def training_history(rt: Runtime, daily: pl.DataFrame | None = None) -> pl.DataFrame:
    """The retrain's frame: every store×SKU×day of the last ``training_days`` days with the
    forecasting service's features as known at the end of that day (Feast
    ``get_historical_features``). Refreshes the inputs first when they are stale."""
    daily = daily if daily is not None else rt.history()
    if daily.is_empty():
        return daily
    as_of = last_date(daily)
    marker = rt.settings.feast_dir / _MARKER
    if not marker.exists() or marker.read_text().strip() != _state_key(rt, as_of):
        from jobs.refresh import refresh_features

        refresh_features(rt, daily)
    since = as_of - timedelta(days=rt.settings.training_days)
    rows = daily.filter(pl.col("date") > since).select("store_id", "sku_id", "date")
    frame = rt.features.training_frame(rows)
    # A day without a calendar row has no event and is no payday.
    return frame.with_columns(pl.col("event", "payday").fill_null(0.0))


def forecast_inputs(rt: Runtime, history: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """``history`` with the online state attached (item attributes on every row, price
    and promotion share on the last day) and ``horizon`` rows per series after it carrying
    the stores' calendar and planned promotions (``units`` null): what the champion's
    global model reads. Without an online state yet, ``history`` as it is."""
    if history.is_empty():
        return history
    keys = history.select("store_id", "sku_id").unique()
    last = last_date(history)
    try:
        state = rt.features.online_state(keys)
        days = [last + timedelta(days=i) for i in range(1, horizon + 1)]
        calendar = rt.features.online_calendar(keys["store_id"].unique().to_list(), days)
    except Exception:  # no Feast store yet (never refreshed): forecast from sales alone
        return history
    static = state.select("store_id", "sku_id", "department", "category")
    now = state.select("store_id", "sku_id", "price_rel", "promo").with_columns(
        pl.lit(last).alias("date")
    )
    past = (
        history.drop(
            [c for c in ("department", "category", "price_rel", "promo") if c in history.columns]
        )
        .join(static, on=["store_id", "sku_id"], how="left")
        .join(now, on=["store_id", "sku_id", "date"], how="left")
    )
    # No promotions file loaded: the online column is all null (dtype null), not text.
    plans = (
        state.select("store_id", "sku_id", pl.col("promo_dates").cast(pl.List(pl.String)))
        .explode("promo_dates")
        .drop_nulls()
    )
    planned = plans.select(
        "store_id",
        "sku_id",
        pl.col("promo_dates").str.to_date().alias("date"),
        pl.lit(1.0).alias("promo"),
    )
    ahead = (
        keys.join(pl.DataFrame({"date": days}), how="cross")
        .join(static, on=["store_id", "sku_id"], how="left")
        .join(calendar, on=["store_id", "date"], how="left")
        .join(planned, on=["store_id", "sku_id", "date"], how="left")
        .with_columns(
            pl.lit(None, dtype=pl.Float64).alias("units"),
            pl.col("promo").fill_null(0.0),
            pl.col("event").fill_null(0.0),
            pl.col("payday").fill_null(0.0),
            pl.lit(False).alias("stockout"),
        )
    )
    return pl.concat([past, ahead], how="diagonal_relaxed").sort("store_id", "sku_id", "date")
