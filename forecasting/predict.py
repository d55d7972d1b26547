"""Daily forecast with each series' champion model: means, daily quantiles, model version."""

from __future__ import annotations

from typing import Any

import polars as pl

from forecasting.boosting import GBM, Booster, booster_forecast
from forecasting.candidates import FALLBACK, GLOBAL, build, candidates_for, components, freq_of
from forecasting.checks import find_suspect_blocks, mask_suspect
from forecasting.covariates import COVARIATES, model_frame
from forecasting.demand import classify
from forecasting.fitted import COSTLY_MODELS, forward_forecast
from forecasting.history import keys_frame, split_uid
from forecasting.profile import PROFILE, profile_forecast
from forecasting.quantiles import add_daily_quantiles, daily_sd
from forecasting.revival import REVIVAL, revival_forecast
from kernel.errors import NotReady

__all__ = ["FORECAST_BASE_COLUMNS", "forecast", "split_future"]

FORECAST_BASE_COLUMNS = ("store_id", "sku_id", "date", "mean")


def split_future(history: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Rows after the last day with sales data whose ``units`` are null carry the planned
    covariates of the days ahead (calendar, promotions); split them from the history."""
    if "units" not in history.columns or history["units"].null_count() == 0:
        return history, None
    last = history.filter(pl.col("units").is_not_null())["date"].max()
    ahead = (pl.col("date") > last) & pl.col("units").is_null()
    future = history.filter(ahead)
    return history.filter(~ahead), (future if future.height else None)


def forecast(
    history: pl.DataFrame,
    champions: pl.DataFrame,
    *,
    horizon: int,
    quantiles: list[float],
    model_version: str,
    n_jobs: int = 1,
    freq: str = "daily",
    fitted: dict[str, dict[str, Any]] | None = None,
    booster: Booster | None = None,
    checks: bool = True,
) -> pl.DataFrame:
    """Forecast ``horizon`` periods (``freq``: days, weeks or months) after the history.

    Model choice and uncertainty come from ``champions`` (a retrain's table). Cheap models
    and the profile model are refitted on the newest history (milliseconds); costly ones
    found in ``fitted`` keep their weekly parameters and go ``forward``; the global
    ``booster`` (fitted at the retrain) reads the newest state and the planned covariates:
    rows of ``history`` after its last sales day with null ``units`` (see
    :func:`split_future`). Without a booster, ``gbm`` falls back to the profile model.
    Suspect blocks of daily history (:mod:`forecasting.checks`, run again here: a block may
    be newer than the retrain) are masked, as at the retrain (``checks``).
    Series unknown to ``champions`` get their class's default candidate.
    Returns the forecast contract: ``store_id, sku_id, date, mean, q…, sd, level_var,
    level_map, model, model_version`` (``level_var``: the relative variance of the level
    shared by the days of a protection period; ``level_map``: the chain's calibration of
    quantile levels by period, see :mod:`forecasting.quantiles`).
    """
    history, future = split_future(history)
    if history.is_empty():
        raise NotReady(
            "the sales history is empty: nothing to forecast",
            hint="ingest POS lines first (`replen ingest pos FILE`)",
        )
    if checks and freq == "daily":
        history = mask_suspect(history, find_suspect_blocks(history))
    frame = model_frame(history, booster.extra if booster is not None else (), freq=freq)
    train_df = frame.select("unique_id", "ds", "y")
    plan = _assign(history, champions, freq)
    fitted = fitted or {}
    last = history["date"].max()
    parts = []
    for (model,), ids in plan.partition_by("model", as_dict=True).items():
        base = components([str(model)])
        uids = ids["unique_id"].to_list()
        stats = tuple(b for b in base if b not in GLOBAL)
        columns = []
        if stats:
            columns.append(
                _statistical(train_df, uids, stats, fitted, horizon, freq, n_jobs).rename(
                    {"mean": "_stats"}
                )
            )
        pooled = [b for b in base if b in GLOBAL]
        if pooled:
            columns.append(_pooled(frame, uids, pooled, last, horizon, booster, future))  # type: ignore[arg-type]
        joined = columns[0]
        for extra in columns[1:]:
            joined = joined.join(extra, on=["unique_id", "date"], how="left")
        weights = ([("_stats", len(stats))] if stats else []) + [(p, 1) for p in pooled]
        total = sum(w for _, w in weights)
        parts.append(
            joined.select(
                "unique_id",
                "date",
                (
                    pl.sum_horizontal([pl.col(c).fill_null(0.0) * w for c, w in weights]) / total
                ).alias("mean"),
            )
        )
    frame_out = (
        pl.concat(parts)
        .join(plan, on="unique_id")
        .with_columns(
            daily_sd(pl.col("mean"), pl.col("sd_daily").fill_null(0.0), "unique_id").alias("sd"),
            pl.lit(model_version).alias("model_version"),
        )
    )
    frame_out = add_daily_quantiles(frame_out, quantiles)
    qcols = [c for c in frame_out.columns if c.startswith("q") and c[1:2].isdigit()]
    return (
        split_uid(frame_out)
        .select(
            "store_id",
            "sku_id",
            "date",
            "mean",
            *qcols,
            "sd",
            "level_var",
            "level_map",
            "model",
            "model_version",
        )
        .sort("store_id", "sku_id", "date")
    )


def _pooled(
    frame: pl.DataFrame,
    uids: list[str],
    models: list[str],
    last: Any,
    horizon: int,
    booster: Booster | None,
    future: pl.DataFrame | None,
) -> pl.DataFrame:
    """Forecasts of the global models for ``uids``: one column per model."""
    mine = frame.join(pl.DataFrame({"unique_id": uids}), on="unique_id")
    out = profile_forecast(mine, [last], horizon).select(
        "unique_id", pl.col("ds").alias("date"), PROFILE
    )
    if REVIVAL in models:
        # The rate of selling again is the chain's (every series' past), as at the retrain.
        out = out.join(
            revival_forecast(frame, [last], horizon).select(
                "unique_id", pl.col("ds").alias("date"), REVIVAL
            ),
            on=["unique_id", "date"],
            how="left",
        ).with_columns(pl.col(REVIVAL).fill_null(0.0))
    if GBM in models:
        if booster is None:
            out = out.with_columns(pl.col(PROFILE).alias(GBM))
        else:
            ahead = _future_frame(future, uids, booster.extra) if future is not None else None
            gbm = booster_forecast(booster, mine, [last], horizon, future=ahead)
            out = out.join(
                gbm.select("unique_id", pl.col("ds").alias("date"), GBM),
                on=["unique_id", "date"],
                how="left",
            ).with_columns(pl.col(GBM).fill_null(pl.col(PROFILE)))
    return out.select("unique_id", "date", *models)


def _future_frame(future: pl.DataFrame, uids: list[str], extra: tuple[str, ...]) -> pl.DataFrame:
    have = [c for c in (*COVARIATES, *extra) if c in future.columns]
    return (
        keys_frame(future)
        .select("unique_id", pl.col("date").alias("ds"), *have)
        .join(pl.DataFrame({"unique_id": uids}), on="unique_id")
    )


def _statistical(
    train_df: pl.DataFrame,
    uids: list[str],
    base: tuple[str, ...],
    fitted: dict[str, dict[str, Any]],
    horizon: int,
    freq: str,
    n_jobs: int,
) -> pl.DataFrame:
    """Mean of the statsforecast components: costly ones fitted weekly go forward."""
    costly = [c for c in base if c in COSTLY_MODELS]
    ahead = [u for u in uids if costly and all(c in fitted.get(u, {}) for c in costly)]
    refit = [u for u in uids if u not in set(ahead)]
    parts = []
    if refit:
        parts.append(_statsforecast(train_df, refit, base, horizon, freq, n_jobs))
    if ahead:
        parts.append(_forward(train_df, ahead, base, costly, fitted, horizon, freq, n_jobs))
    return pl.concat(parts)


def _statsforecast(
    train_df: pl.DataFrame,
    uids: list[str],
    base: tuple[str, ...],
    horizon: int,
    freq: str,
    n_jobs: int,
) -> pl.DataFrame:
    from statsforecast import StatsForecast

    group = train_df.join(pl.DataFrame({"unique_id": uids}), on="unique_id")
    sf = StatsForecast(
        models=build(base, freq),
        freq=freq_of(freq).alias,
        n_jobs=n_jobs,
        fallback_model=build([FALLBACK], freq)[0],
    )
    out = pl.DataFrame(sf.forecast(df=group, h=horizon))
    return out.select(
        "unique_id",
        pl.col("ds").cast(pl.Date).alias("date"),
        pl.mean_horizontal(
            [pl.col(b).cast(pl.Float64).fill_nan(0.0).clip(lower_bound=0.0) for b in base]
        ).alias("mean"),
    )


def _forward(
    train_df: pl.DataFrame,
    uids: list[str],
    base: tuple[str, ...],
    costly: list[str],
    fitted: dict[str, dict[str, Any]],
    horizon: int,
    freq: str,
    n_jobs: int,
) -> pl.DataFrame:
    cheap = tuple(c for c in base if c not in costly)
    cheap_part = _statsforecast(train_df, uids, cheap, horizon, freq, n_jobs) if cheap else None
    unit = freq_of(freq).alias[1:]
    rows = []
    for uid, series in train_df.join(pl.DataFrame({"unique_id": uids}), on="unique_id").group_by(
        "unique_id", maintain_order=True
    ):
        ordered = series.sort("ds")
        mean = forward_forecast(
            {c: fitted[str(uid[0])][c] for c in costly}, ordered["y"].to_numpy(), horizon
        )
        last = ordered["ds"][-1]
        dates = pl.select(
            pl.lit(last).dt.offset_by(pl.format("{}" + unit, pl.int_range(1, horizon + 1)))
        ).to_series()
        rows.append(
            pl.DataFrame(
                {"unique_id": [uid[0]] * horizon, "date": dates.cast(pl.Date), "_costly": mean}
            )
        )
    costly_part = pl.concat(rows)
    if cheap_part is None:
        return costly_part.rename({"_costly": "mean"})
    # The champion is the mean of all its components, cheap and costly alike.
    k_cheap, k_costly = len(cheap), len(costly)
    return cheap_part.join(costly_part, on=["unique_id", "date"]).select(
        "unique_id",
        "date",
        ((pl.col("mean") * k_cheap + pl.col("_costly") * k_costly) / (k_cheap + k_costly)).alias(
            "mean"
        ),
    )


_PLAN = ("unique_id", "model", "sd_daily", "level_var", "level_map")


def _assign(history: pl.DataFrame, champions: pl.DataFrame, freq: str) -> pl.DataFrame:
    """The plan columns (:data:`_PLAN`) for every series in ``history``."""
    if "level_var" not in champions.columns:  # tables from before it was calibrated
        champions = champions.with_columns(pl.lit(0.0).alias("level_var"))
    if "level_map" not in champions.columns:  # tables from before the map
        champions = champions.with_columns(pl.lit(None, dtype=pl.String).alias("level_map"))
    known = keys_frame(champions).select(_PLAN)
    series = keys_frame(history.select("store_id", "sku_id").unique()).select("unique_id")
    unknown = series.join(known, on="unique_id", how="anti")
    if unknown.is_empty():
        return known.join(series, on="unique_id")
    fresh = keys_frame(
        classify(split_uid(unknown).join(history, on=["store_id", "sku_id"]), freq=freq)
    )
    stats = (
        keys_frame(history)
        .join(unknown, on="unique_id")
        .group_by("unique_id")
        .agg(pl.col("units").std().fill_null(0.0).alias("sd_daily"))
    )
    default = (
        fresh.select(
            "unique_id",
            pl.col("demand_class")
            .map_elements(
                lambda c: candidates_for(c, freq=freq, pooled=False)[0], return_dtype=pl.String
            )
            .alias("model"),
        )
        .join(stats, on="unique_id")
        .with_columns(
            pl.lit(0.0).alias("level_var"),
            pl.lit(None, dtype=pl.String).alias("level_map"),
        )
        .select(_PLAN)
    )
    return pl.concat([known.join(series, on="unique_id"), default], how="vertical_relaxed")
