"""Weekly retrain: check the data, backtest every candidate, select, calibrate, fit globals."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from forecasting.backtest import backtest, cutoffs, series_errors, window_errors
from forecasting.boosting import GBM, Booster, booster_forecast, fit_booster
from forecasting.candidates import CANDIDATES, FALLBACK, candidates_for, freq_of
from forecasting.checks import find_suspect_blocks, mask_suspect, no_blocks
from forecasting.covariates import model_frame
from forecasting.demand import classify
from forecasting.fitted import fit_costly
from forecasting.history import keys_frame, split_uid
from forecasting.profile import profile_forecast
from forecasting.quantiles import CALIBRATION_LEVELS, calibrate, no_factors, quantile_column
from forecasting.revival import revival_forecast
from forecasting.select import pick_champions, sales_weights, summarise

__all__ = ["COVERAGE_LEVELS", "TrainResult", "train"]

COVERAGE_LEVELS = CALIBRATION_LEVELS


@dataclass
class TrainResult:
    """Everything a retrain learned; ``champions`` and ``booster`` are what forecasts need."""

    champions: pl.DataFrame  # store_id, sku_id, demand_class, model, sd_daily, level_var…
    errors: pl.DataFrame  # per series × candidate backtest errors
    cv: pl.DataFrame  # backtest predictions (long)
    metrics: dict[str, float]
    params: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    coverage: pl.DataFrame = field(default_factory=pl.DataFrame)  # per class × scope × level
    fitted: dict[str, dict[str, Any]] = field(default_factory=dict)  # costly, for forward
    booster: Booster | None = None  # the global model, fitted on all history
    checks: pl.DataFrame = field(default_factory=pl.DataFrame)  # suspect blocks (masked)
    selection: pl.DataFrame = field(default_factory=pl.DataFrame)  # per class decisions
    window_scores: pl.DataFrame = field(default_factory=pl.DataFrame)  # class × model × window


def train(
    history: pl.DataFrame,
    *,
    horizon: int = 14,
    n_windows: int = 4,
    costly: bool = False,
    n_jobs: int = 1,
    on_class: Callable[[str, int], None] | None = None,
    candidates: Mapping[str, tuple[str, ...]] | None = None,
    switch: float = 1.0,
    freq: str = "daily",
    gap: int = 0,
    protection_days: int | None = None,
    pooled: bool = True,
    checks: bool = True,
    extra_features: tuple[str, ...] = (),
    metric: str = "loss",
) -> TrainResult:
    """Fit and select per-series models on daily-sales ``history``.

    ``history`` needs ``store_id, sku_id, date, units`` (``stockout``, ``price`` and the
    covariates of :mod:`forecasting.covariates` optional). Blocks that are not demand
    (:mod:`forecasting.checks`) are masked first. Each class's candidates are backtested
    on ``n_windows`` windows of ``horizon`` periods after a ``gap`` (weekly and monthly data:
    enough windows to span a year); selection follows
    :func:`forecasting.select.pick_champions` with sales-value weights on ``metric``
    (``loss``: the ordering loss; or ``rmsse``). ``switch``: how much better a series' own
    model must be to leave its class champion; 1 (the default) keeps every series on it:
    per-series choices lost to the class champion on M5 days and weeks. Quantiles are
    calibrated on totals over every week up to ``protection_days`` (default: the
    horizon). ``pooled`` adds the global models (daily data); ``extra_features`` are more
    numeric columns of ``history`` for the boosted model (known in advance for the days
    forecast). Series too short for the backtest are class ``new`` and get the fallback
    model.
    """
    started = time.perf_counter()
    f = freq_of(freq)
    daily = freq == "daily"
    blocks = find_suspect_blocks(history) if checks and daily else no_blocks()
    if blocks.height:
        history = mask_suspect(history, blocks)
    if not daily:
        # Windows over a whole seasonal cycle: with fewer, yearly-seasonal models win the
        # season the windows happen to cover (M5 weeks: 4 windows chose them and lost).
        n_windows = max(n_windows, -(-f.season // horizon))
    min_days = max(f.min_history, horizon * n_windows + gap + f.window)
    classes = keys_frame(classify(history, freq=freq, min_periods=min_days))
    frame = model_frame(history, extra_features, freq=freq)
    train_df = frame.select("unique_id", "ds", "y")
    testable = classes.filter(pl.col("demand_class") != "new")
    last = history["date"].max()
    origins = cutoffs(last, horizon=horizon, n_windows=n_windows, gap=gap, freq=freq)  # type: ignore[arg-type]
    use_pooled = pooled and daily and testable.height > 0
    extra: pl.DataFrame | None = None
    booster: Booster | None = None
    timings: dict[str, float] = {}
    if use_pooled:
        extra, booster, timings = _global_models(
            frame.join(testable.select("unique_id"), on="unique_id"),
            origins,
            horizon + gap,
            extra_features,
        )
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
        gap=gap,
        extra=extra,
    )
    censored = frame.filter(pl.col("censored")).select("unique_id", "ds")
    scored = cv.join(censored, on=["unique_id", "ds"], how="anti")
    scale = _naive_scale(train_df, scored)
    errors = series_errors(scored, scale)
    if errors.height:
        selection = pick_champions(
            window_errors(scored, scale),
            sales_weights(history, origins),
            switch=switch,
            candidates=_lists(candidates, costly, freq, use_pooled),
            metric=metric,
        )
        chosen = selection.chosen
    else:
        selection, chosen = None, _empty_chosen()
    picked = scored.join(chosen.select("unique_id", "model"), on=["unique_id", "model"])
    span = min(protection_days or horizon, horizon)
    factors, covered = calibrate(picked, span) if picked.height else (no_factors(), pl.DataFrame())
    if not daily:  # the map is by protection period in days: plans are made on days
        factors = factors.with_columns(pl.lit(None, dtype=pl.String).alias("level_map"))
    champions = _champions(chosen, errors, factors, classes, train_df)
    metrics = summarise(errors, chosen) if errors.height else {}
    metrics |= _coverage_metrics(covered)
    metrics["series"] = float(champions.height)
    metrics["suspect_blocks"] = float(blocks.height)
    metrics |= {f"seconds.{k}": v for k, v in timings.items()}
    for cls, n in champions.group_by("demand_class").len().iter_rows():
        metrics[f"{cls}.series"] = float(n)
    params: dict[str, object] = {
        "horizon": horizon,
        "n_windows": n_windows,
        "gap": gap,
        "protection_days": span,
        "costly": costly,
        "switch": switch,
        "freq": freq,
        "pooled": use_pooled,
        "series": champions.height,
        "start": str(history["date"].min()),
        "end": str(last),
        "cutoffs": ",".join(str(c) for c in origins),
    }
    if booster is not None:
        params |= {f"gbm.{k}": v for k, v in booster.params.items()} | {"gbm.rows": booster.rows}
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
        booster=booster,
        checks=blocks,
        selection=selection.decisions if selection is not None else pl.DataFrame(),
        window_scores=selection.scores if selection is not None else pl.DataFrame(),
    )


def _global_models(
    testable: pl.DataFrame,
    origins: list,
    ahead: int,
    features: tuple[str, ...] = (),
) -> tuple[pl.DataFrame, Booster | None, dict[str, float]]:
    """Backtest forecasts of the global models at every origin, and the booster.

    The booster is fitted once, on the history before the first origin, and goes forward
    over the newer data at every later origin — and then forecasts in production: the model
    that serves is the model the backtest judged. Measured on four M5 windows, a booster
    refitted on the newest 16 weeks as well was no more accurate (benchmarks/README.md),
    and that second fit was a fifth of the retrain's cost."""
    t0 = time.perf_counter()
    extra = profile_forecast(testable, origins, ahead).join(
        revival_forecast(testable, origins, ahead), on=["unique_id", "cutoff", "ds"], how="left"
    )
    t1 = time.perf_counter()
    booster = fit_booster(testable, origins[0], ahead, extra=features)
    if booster is not None:
        extra = extra.join(
            booster_forecast(booster, testable, origins, ahead),
            on=["unique_id", "cutoff", "ds"],
            how="left",
        )
    else:
        extra = extra.with_columns(pl.col("profile").alias(GBM))
    t2 = time.perf_counter()
    return extra, booster, {"profile": t1 - t0, "gbm": t2 - t1}


def _lists(
    candidates: Mapping[str, tuple[str, ...]] | None, costly: bool, freq: str, pooled: bool
) -> dict[str, tuple[str, ...]]:
    out = {c: candidates_for(c, costly=costly, freq=freq, pooled=pooled) for c in CANDIDATES}
    return out | dict(candidates or {})


def _champions(
    chosen: pl.DataFrame,
    errors: pl.DataFrame,
    factors: pl.DataFrame,
    classes: pl.DataFrame,
    train_df: pl.DataFrame,
) -> pl.DataFrame:
    tested = (
        chosen.join(errors.select("unique_id", "model", "rmse", "loss"), on=["unique_id", "model"])
        .join(factors, on="demand_class", how="left")
        .select(
            "unique_id",
            "model",
            pl.col("rmse").alias("sd_daily"),
            pl.col("level_var").fill_null(0.0),
            "level_map",
            "loss",
        )
    )
    new = _new_series(classes, train_df)
    table = pl.concat([tested, new], how="vertical_relaxed").join(
        classes.drop("store_id", "sku_id"), on="unique_id"
    )
    return (
        split_uid(table)
        .select(
            "store_id",
            "sku_id",
            "demand_class",
            "model",
            "sd_daily",
            "level_var",
            "level_map",
            "loss",
            "n_days",
            "nonzero_days",
            "adi",
            "cv2",
        )
        .sort("store_id", "sku_id")
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


def _new_series(classes: pl.DataFrame, train_df: pl.DataFrame) -> pl.DataFrame:
    """Series too short to backtest: the fallback model, with their own history's spread."""
    ids = classes.filter(pl.col("demand_class") == "new").select("unique_id")
    return (
        train_df.join(ids, on="unique_id")
        .group_by("unique_id")
        .agg(pl.col("y").std().fill_null(0.0).alias("sd_daily"))
        .select(
            "unique_id",
            pl.lit(FALLBACK).alias("model"),
            "sd_daily",
            pl.lit(0.0).alias("level_var"),
            pl.lit(None, dtype=pl.String).alias("level_map"),
            pl.lit(None, dtype=pl.Float64).alias("loss"),
        )
    )


def _empty_chosen() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"unique_id": pl.String, "demand_class": pl.String, "model": pl.String}
    )


def _coverage_metrics(covered: pl.DataFrame) -> dict[str, float]:
    """``coverage.daily.q90`` … overall and ``<class>.coverage.total.q95`` … per class."""
    out: dict[str, float] = {}
    if covered.is_empty():
        return out
    for scope, frame in [
        ("", covered),
        *[(f"{c}.", f) for (c,), f in covered.partition_by("demand_class", as_dict=True).items()],
    ]:
        agg = frame.group_by("scope", "level").agg(
            (pl.col("hits").sum() / pl.col("n").sum()).alias("share")
        )
        for kind, level, share in agg.iter_rows():
            out[f"{scope}coverage.{kind}.{quantile_column(level)}"] = float(share)
    return out
