"""Weekly retrain: classify series, backtest candidates per class, pick per-series champions."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from forecasting.backtest import backtest, coverage, series_errors
from forecasting.candidates import FALLBACK, freq_of
from forecasting.demand import classify
from forecasting.fitted import fit_costly
from forecasting.history import keys_frame, split_uid, to_training_frame
from forecasting.select import pick_champions, summarise

__all__ = ["COVERAGE_LEVELS", "TrainResult", "train"]

COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)


@dataclass
class TrainResult:
    """Everything a retrain learned; ``champions`` is what the forecast model needs."""

    champions: pl.DataFrame  # store_id, sku_id, demand_class, model, sd_daily, cum_sd_factor…
    errors: pl.DataFrame  # per series × candidate backtest errors
    cv: pl.DataFrame  # backtest predictions (long)
    metrics: dict[str, float]
    params: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    coverage: pl.DataFrame = field(default_factory=pl.DataFrame)  # per series × level
    fitted: dict[str, dict[str, Any]] = field(default_factory=dict)  # costly, for forward


def train(
    history: pl.DataFrame,
    *,
    horizon: int = 14,
    n_windows: int = 3,
    costly: bool = False,
    n_jobs: int = 1,
    on_class: Callable[[str, int], None] | None = None,
    candidates: Mapping[str, tuple[str, ...]] | None = None,
    switch: float = 0.3,
    freq: str = "daily",
) -> TrainResult:
    """Fit and select per-series models on daily-sales ``history``.

    ``history`` needs ``store_id, sku_id, date, units`` (``stockout`` optional). Series too
    short for ``n_windows`` backtest windows of ``horizon`` days are class ``new`` and get
    the fallback model; a model that fails on a series falls back the same way.
    ``switch``: how much better a series' own best model must be to override its class
    champion (see :func:`forecasting.select.pick_champions`).
    """
    started = time.perf_counter()
    f = freq_of(freq)
    min_days = max(f.min_history, horizon * n_windows + f.window)
    classes = keys_frame(classify(history, freq=freq, min_periods=min_days))
    train_df = to_training_frame(history, freq=freq)
    testable = classes.filter(pl.col("demand_class") != "new")
    cv = backtest(
        train_df,
        testable.select("unique_id", "demand_class"),
        horizon=horizon,
        n_windows=n_windows,
        costly=costly,
        n_jobs=n_jobs,
        on_class=on_class,
        candidates=candidates,
        freq=freq,
    )
    scale = _naive_scale(train_df, cv)
    errors = series_errors(cv, scale)
    chosen = pick_champions(errors, switch) if errors.height else _empty_chosen()
    factor = _cum_factor(chosen)
    new = _new_series(classes, train_df)
    champions = pl.concat(
        [
            chosen.join(factor, on="demand_class", how="left").select(
                "unique_id",
                "model",
                pl.col("rmse").alias("sd_daily"),
                pl.col("cum_sd_factor").fill_null(1.0),
                "loss",
            ),
            new,
        ],
        how="vertical_relaxed",
    ).join(classes.drop("store_id", "sku_id"), on="unique_id")
    champions = (
        split_uid(champions)
        .select(
            "store_id",
            "sku_id",
            "demand_class",
            "model",
            "sd_daily",
            "cum_sd_factor",
            pl.lit(horizon, dtype=pl.Int64).alias("cum_sd_horizon"),
            "loss",
            "n_days",
            "nonzero_days",
            "adi",
            "cv2",
        )
        .sort("store_id", "sku_id")
    )
    metrics = summarise(errors, chosen) if errors.height else {}
    covered = coverage(cv, chosen, COVERAGE_LEVELS, factor) if errors.height else pl.DataFrame()
    metrics |= _coverage_metrics(covered)
    metrics["series"] = float(champions.height)
    for cls, n in champions.group_by("demand_class").len().iter_rows():
        metrics[f"{cls}.series"] = float(n)
    params: dict[str, object] = {
        "horizon": horizon,
        "n_windows": n_windows,
        "costly": costly,
        "switch": switch,
        "freq": freq,
        "series": champions.height,
        "start": str(history["date"].min()),
        "end": str(history["date"].max()),
    }
    fitted = (
        fit_costly(train_df, keys_frame(champions).select("unique_id", "model"), freq)
        if costly
        else {}
    )
    return TrainResult(
        fitted=fitted,
        coverage=covered,
        champions=champions,
        errors=errors,
        cv=cv,
        metrics=metrics,
        params=params,
        seconds=time.perf_counter() - started,
    )


def _naive_scale(train_df: pl.DataFrame, cv: pl.DataFrame) -> pl.DataFrame:
    """Mean squared one-step difference of each series before its first backtest cutoff."""
    if cv.is_empty():
        return pl.DataFrame(
            schema={"unique_id": pl.String, "scale": pl.Float64, "scale_abs": pl.Float64}
        )
    first = cv.group_by("unique_id").agg(pl.col("cutoff").min().alias("_cut"))
    return (
        train_df.join(first, on="unique_id")
        .filter(pl.col("ds") <= pl.col("_cut"))
        .group_by("unique_id")
        .agg(
            pl.col("y").diff().pow(2).mean().alias("scale"),
            pl.col("y").diff().abs().mean().alias("scale_abs"),
        )
    )


def _cum_factor(chosen: pl.DataFrame) -> pl.DataFrame:
    """Per class: how much larger window-total errors are than √h × daily errors."""
    return (
        chosen.filter(pl.col("rmse") > 0)
        .group_by("demand_class")
        .agg(
            # RMS of the per-series ratios: scale-free (series of any volume count alike)
            # and tail-aware (a median under-covered the high quantiles of totals).
            (pl.col("cum_rmse") / (pl.col("rmse") * pl.col("h").sqrt()))
            .pow(2)
            .mean()
            .sqrt()
            .clip(0.5, 4.0)
            .alias("cum_sd_factor")
        )
    )


def _new_series(classes: pl.DataFrame, train_df: pl.DataFrame) -> pl.DataFrame:
    ids = classes.filter(pl.col("demand_class") == "new").select("unique_id")
    return (
        train_df.join(ids, on="unique_id")
        .group_by("unique_id")
        .agg(pl.col("y").std().fill_null(0.0).alias("sd_daily"))
        .select(
            "unique_id",
            pl.lit(FALLBACK).alias("model"),
            "sd_daily",
            pl.lit(1.0).alias("cum_sd_factor"),
            pl.lit(None, dtype=pl.Float64).alias("loss"),
        )
    )


def _empty_chosen() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "unique_id": pl.String,
            "demand_class": pl.String,
            "model": pl.String,
            "loss": pl.Float64,
            "rmse": pl.Float64,
            "cum_rmse": pl.Float64,
            "h": pl.UInt32,
        }
    )


def _coverage_metrics(covered: pl.DataFrame) -> dict[str, float]:
    """``coverage.daily.q90`` … overall and ``<class>.coverage.total.q95`` … per class."""
    from forecasting.quantiles import quantile_column

    out: dict[str, float] = {}
    if covered.is_empty():
        return out
    for scope, frame in [
        ("", covered),
        *[(f"{c}.", f) for (c,), f in covered.partition_by("demand_class", as_dict=True).items()],
    ]:
        agg = frame.group_by("level").agg(
            (pl.col("daily_hits").sum() / pl.col("daily_n").sum()).alias("daily"),
            (pl.col("total_hits").sum() / pl.col("total_n").sum()).alias("total"),
        )
        for level, daily, total in agg.iter_rows():
            out[f"{scope}coverage.daily.{quantile_column(level)}"] = float(daily)
            out[f"{scope}coverage.total.{quantile_column(level)}"] = float(total)
    return out
