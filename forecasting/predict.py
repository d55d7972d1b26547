"""Daily forecast with each series' champion model: means, daily quantiles, model version."""

from __future__ import annotations

from typing import Any

import polars as pl

from forecasting.candidates import FALLBACK, build, candidates_for, components, freq_of
from forecasting.demand import classify
from forecasting.fitted import COSTLY_MODELS, forward_forecast
from forecasting.history import keys_frame, split_uid, to_training_frame
from forecasting.quantiles import add_daily_quantiles
from kernel.errors import NotReady

__all__ = ["FORECAST_BASE_COLUMNS", "forecast"]

FORECAST_BASE_COLUMNS = ("store_id", "sku_id", "date", "mean")


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
) -> pl.DataFrame:
    """Forecast ``horizon`` periods (``freq``: days, weeks or months) after each series' last.

    Model choice and error scale come from ``champions`` (a retrain's table). Cheap models
    are refitted on the newest history (milliseconds); costly ones found in ``fitted`` (from
    :func:`forecasting.fitted.fit_costly` at the retrain) keep their parameters and go
    ``forward`` over the newest sales. Series unknown to ``champions`` get their class's
    first (cheapest) candidate.
    Returns the forecast contract: ``store_id, sku_id, date, mean, q…, sd, cum_sd_factor,
    model, model_version``.
    """
    train_df = to_training_frame(history, freq=freq)
    plan = _assign(history, champions, freq)
    fitted = fitted or {}
    parts = []
    for (model,), ids in plan.partition_by("model", as_dict=True).items():
        base = components([str(model)])
        costly = [c for c in base if c in COSTLY_MODELS]
        uids = ids["unique_id"].to_list()
        # Series whose costly models were fitted at the retrain go forward with them.
        ahead = [u for u in uids if costly and all(c in fitted.get(u, {}) for c in costly)]
        refit = [u for u in uids if u not in set(ahead)]
        if refit:
            parts.append(_statsforecast(train_df, refit, base, horizon, freq, n_jobs))
        if ahead:
            parts.append(_forward(train_df, ahead, base, costly, fitted, horizon, freq, n_jobs))
    if not parts:
        raise NotReady(
            "the sales history is empty: nothing to forecast",
            hint="ingest POS lines first (`replen ingest pos FILE`)",
        )
    frame = (
        pl.concat(parts)
        .join(plan, on="unique_id")
        .with_columns(
            pl.col("sd_daily").fill_null(0.0).alias("sd"),
            pl.lit(model_version).alias("model_version"),
        )
    )
    frame = add_daily_quantiles(frame, quantiles)
    qcols = [c for c in frame.columns if c.startswith("q") and c[1:2].isdigit()]
    return (
        split_uid(frame)
        .select(
            "store_id",
            "sku_id",
            "date",
            "mean",
            *qcols,
            "sd",
            "cum_sd_factor",
            "cum_sd_horizon",
            "model",
            "model_version",
        )
        .sort("store_id", "sku_id", "date")
    )


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


def _assign(history: pl.DataFrame, champions: pl.DataFrame, freq: str) -> pl.DataFrame:
    """``unique_id, model, sd_daily, cum_sd_factor`` for every series in ``history``."""
    if "cum_sd_horizon" not in champions.columns:  # tables from before it was recorded
        champions = champions.with_columns(pl.lit(None, dtype=pl.Int64).alias("cum_sd_horizon"))
    known = keys_frame(champions).select(
        "unique_id", "model", "sd_daily", "cum_sd_factor", "cum_sd_horizon"
    )
    series = keys_frame(history.select("store_id", "sku_id").unique()).select("unique_id")
    unknown = series.join(known, on="unique_id", how="anti")
    if unknown.is_empty():
        return known.join(series, on="unique_id")
    fresh = keys_frame(
        classify(split_uid(unknown).join(history, on=["store_id", "sku_id"]), freq=freq)
    )
    sd = (
        to_training_frame(history, freq=freq)
        .join(unknown, on="unique_id")
        .group_by("unique_id")
        .agg(pl.col("y").std().fill_null(0.0).alias("sd_daily"))
    )
    default = (
        fresh.select(
            "unique_id",
            pl.col("demand_class")
            .map_elements(lambda c: candidates_for(c)[0], return_dtype=pl.String)
            .alias("model"),
        )
        .join(sd, on="unique_id")
        .with_columns(
            pl.lit(1.0).alias("cum_sd_factor"),
            pl.lit(None, dtype=pl.Int64).alias("cum_sd_horizon"),
        )
    )
    return pl.concat([known.join(series, on="unique_id"), default], how="vertical_relaxed")
