"""Daily forecast with each series' champion model: means, daily quantiles, model version."""

from __future__ import annotations

import polars as pl

from forecasting.candidates import FALLBACK, build, candidates_for, components, freq_of
from forecasting.demand import classify
from forecasting.history import keys_frame, split_uid, to_training_frame
from forecasting.quantiles import add_daily_quantiles

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
) -> pl.DataFrame:
    """Forecast ``horizon`` periods (``freq``: days, weeks or months) after each series' last.

    Model choice and error scale come from ``champions`` (a retrain's table); the model is
    fitted on the newest history, so a daily forecast uses yesterday's sales. Series unknown
    to ``champions`` get their class's first (cheapest) candidate.
    Returns the forecast contract: ``store_id, sku_id, date, mean, q…, sd, cum_sd_factor,
    model, model_version``.
    """
    from statsforecast import StatsForecast

    train_df = to_training_frame(history)
    plan = _assign(history, champions)
    parts = []
    for (model,), ids in plan.partition_by("model", as_dict=True).items():
        group = train_df.join(ids.select("unique_id"), on="unique_id")
        base = components([str(model)])
        sf = StatsForecast(
            models=build(base, freq),
            freq=freq_of(freq).alias,
            n_jobs=n_jobs,
            fallback_model=build([FALLBACK], freq)[0],
        )
        out = pl.DataFrame(sf.forecast(df=group, h=horizon))
        parts.append(
            out.select(
                "unique_id",
                pl.col("ds").cast(pl.Date).alias("date"),
                pl.mean_horizontal(
                    [pl.col(b).cast(pl.Float64).fill_nan(0.0).clip(lower_bound=0.0) for b in base]
                ).alias("mean"),
            )
        )
    if not parts:
        raise ValueError("history is empty: nothing to forecast")
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
            "model",
            "model_version",
        )
        .sort("store_id", "sku_id", "date")
    )


def _assign(history: pl.DataFrame, champions: pl.DataFrame) -> pl.DataFrame:
    """``unique_id, model, sd_daily, cum_sd_factor`` for every series in ``history``."""
    known = keys_frame(champions).select("unique_id", "model", "sd_daily", "cum_sd_factor")
    series = keys_frame(history.select("store_id", "sku_id").unique()).select("unique_id")
    unknown = series.join(known, on="unique_id", how="anti")
    if unknown.is_empty():
        return known.join(series, on="unique_id")
    fresh = keys_frame(classify(split_uid(unknown).join(history, on=["store_id", "sku_id"])))
    sd = (
        to_training_frame(history)
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
        .with_columns(pl.lit(1.0).alias("cum_sd_factor"))
    )
    return pl.concat([known.join(series, on="unique_id"), default], how="vertical_relaxed")
