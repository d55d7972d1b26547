"""Rolling-origin backtest of candidate models, one statsforecast run per demand class."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl

from forecasting.candidates import FALLBACK, build, candidates_for, components, freq_of
from forecasting.engine import cross_validation

__all__ = ["backtest", "coverage", "series_errors"]


def backtest(
    train: pl.DataFrame,
    classes: pl.DataFrame,
    *,
    horizon: int,
    n_windows: int,
    costly: bool = False,
    n_jobs: int = 1,
    on_class: Callable[[str, int], None] | None = None,
    candidates: Mapping[str, tuple[str, ...]] | None = None,
    freq: str = "daily",
) -> pl.DataFrame:
    """Cross-validate each class's candidates on its series.

    ``train``: ``unique_id, ds, y``; ``classes``: ``unique_id, demand_class``. Windows are
    non-overlapping, ``horizon`` days each, the last ending on the last day of history.
    ``candidates`` overrides the candidate names per class (e.g. to try one model only).
    Returns long rows ``unique_id, demand_class, cutoff, ds, y, model, yhat``.
    """
    from statsforecast import StatsForecast

    out = []
    for cls, ids in classes.group_by("demand_class", maintain_order=True):
        name = str(cls[0])
        names = (
            tuple(candidates[name])
            if candidates and name in candidates
            else candidates_for(name, costly=costly)
        )
        group = train.join(ids.select("unique_id"), on="unique_id")
        if group.is_empty():
            continue
        base = components(names)
        sf = StatsForecast(
            models=build(base, freq),
            freq=freq_of(freq).alias,
            n_jobs=n_jobs,
            fallback_model=build([FALLBACK], freq)[0],
        )
        cv = cross_validation(
            sf, group, h=horizon, n_windows=n_windows, step_size=horizon
        ).with_columns(pl.col(list(base)).cast(pl.Float64).fill_nan(None).clip(lower_bound=0.0))
        # Combinations (and legacy names) are means of base model columns.
        derived = [n for n in names if n not in base]
        cv = cv.with_columns([pl.mean_horizontal(list(components([n]))).alias(n) for n in derived])
        long = cv.unpivot(
            index=["unique_id", "ds", "cutoff", "y"],
            on=list(names),
            variable_name="model",
            value_name="yhat",
        ).with_columns(
            pl.lit(name).alias("demand_class"),
            pl.col("yhat").cast(pl.Float64).fill_nan(None).fill_null(0.0).clip(lower_bound=0.0),
        )
        out.append(long)
        if on_class is not None:
            on_class(name, ids.height)
    if not out:
        return pl.DataFrame(
            schema={
                "unique_id": pl.String,
                "demand_class": pl.String,
                "cutoff": pl.Date,
                "ds": pl.Date,
                "y": pl.Float64,
                "model": pl.String,
                "yhat": pl.Float64,
            }
        )
    return pl.concat(out, how="vertical_relaxed").select(
        "unique_id", "demand_class", "cutoff", "ds", "y", "model", "yhat"
    )


def series_errors(cv: pl.DataFrame, scale: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per series and model: the selection loss and the usual accuracy measures.

    ``loss`` is the mean absolute error of the window total (demand over the horizon, the
    quantity that sizes an order); also ``mae, rmse, bias, wape, cum_rmse`` and, when
    ``scale`` (``unique_id, scale, scale_abs``: mean squared and mean absolute one-step
    difference of the training history) is given, ``rmsse`` and ``mase``.
    """
    err = pl.col("yhat") - pl.col("y")
    windows = cv.group_by("unique_id", "demand_class", "model", "cutoff").agg(
        (pl.col("yhat").sum() - pl.col("y").sum()).alias("cum_err"),
        pl.len().alias("h"),
    )
    per_window = windows.group_by("unique_id", "demand_class", "model").agg(
        pl.col("cum_err").abs().mean().alias("loss"),
        pl.col("cum_err").pow(2).mean().sqrt().alias("cum_rmse"),
        pl.col("h").first().alias("h"),
    )
    daily = cv.group_by("unique_id", "model").agg(
        err.abs().mean().alias("mae"),
        err.pow(2).mean().sqrt().alias("rmse"),
        err.sum().alias("_err_sum"),
        err.abs().sum().alias("_abs_sum"),
        pl.col("y").sum().alias("_y_sum"),
    )
    out = per_window.join(daily, on=["unique_id", "model"]).with_columns(
        pl.when(pl.col("_y_sum") > 0).then(pl.col("_err_sum") / pl.col("_y_sum")).alias("bias"),
        pl.when(pl.col("_y_sum") > 0).then(pl.col("_abs_sum") / pl.col("_y_sum")).alias("wape"),
    )
    if scale is not None:
        out = (
            out.join(scale, on="unique_id", how="left")
            .with_columns(
                pl.when(pl.col("scale") > 0)
                .then(pl.col("rmse") / pl.col("scale").sqrt())
                .alias("rmsse"),
                pl.when(pl.col("scale_abs") > 0)
                .then(pl.col("mae") / pl.col("scale_abs"))
                .alias("mase"),
            )
            .drop("scale", "scale_abs")
        )
    return out


def coverage(
    cv: pl.DataFrame, champions: pl.DataFrame, levels: tuple[float, ...], factor: pl.DataFrame
) -> pl.DataFrame:
    """Out-of-sample coverage of the quantiles the forecasts would have carried.

    For each series and backtest window, the error scale comes from the *other* windows
    (leave-one-window-out), as it would in production; then the daily quantiles and the
    window-total quantile (gamma law, :mod:`forecasting.quantiles`) are checked against the
    actuals. ``champions``: ``unique_id, model``; ``factor``: ``demand_class,
    cum_sd_factor``. Returns per series × level: ``daily_hits, daily_n, total_hits,
    total_n`` to aggregate as wanted.
    """
    from forecasting.quantiles import gamma_quantile

    picked = cv.join(champions.select("unique_id", "model"), on=["unique_id", "model"])
    if picked.is_empty():
        return pl.DataFrame()
    sq = picked.group_by("unique_id", "cutoff").agg(
        (pl.col("yhat") - pl.col("y")).pow(2).sum().alias("_sq"), pl.len().alias("_n")
    )
    totals = sq.group_by("unique_id").agg(
        pl.col("_sq").sum().alias("_sq_all"), pl.col("_n").sum().alias("_n_all")
    )
    loo = (
        sq.join(totals, on="unique_id")
        .with_columns(
            pl.when(pl.col("_n_all") > pl.col("_n"))
            .then(((pl.col("_sq_all") - pl.col("_sq")) / (pl.col("_n_all") - pl.col("_n"))).sqrt())
            .otherwise(None)
            .alias("_sd")
        )
        .select("unique_id", "cutoff", "_sd")
    )
    days = (
        picked.join(loo, on=["unique_id", "cutoff"])
        .drop_nulls("_sd")
        .join(factor, on="demand_class", how="left")
        .with_columns(pl.col("cum_sd_factor").fill_null(1.0))
    )
    if days.is_empty():
        return pl.DataFrame()
    windows = days.group_by("unique_id", "demand_class", "cutoff").agg(
        pl.col("yhat").sum().alias("_mu"),
        pl.col("y").sum().alias("_y"),
        (pl.col("_sd").first() * pl.col("cum_sd_factor").first() * pl.len().sqrt()).alias("_s"),
    )
    rows = []
    for q in levels:
        daily_q = gamma_quantile(days["yhat"].to_numpy(), days["_sd"].to_numpy(), q)
        total_q = gamma_quantile(windows["_mu"].to_numpy(), windows["_s"].to_numpy(), q)
        d = days.select("unique_id", "demand_class").with_columns(
            (days["y"] <= pl.Series(daily_q) + 1e-9).alias("_hit")
        )
        w = windows.select("unique_id").with_columns(
            (windows["_y"] <= pl.Series(total_q) + 1e-9).alias("_hit")
        )
        per = (
            d.group_by("unique_id", "demand_class")
            .agg(pl.col("_hit").sum().alias("daily_hits"), pl.len().alias("daily_n"))
            .join(
                w.group_by("unique_id").agg(
                    pl.col("_hit").sum().alias("total_hits"), pl.len().alias("total_n")
                ),
                on="unique_id",
            )
        )
        rows.append(per.with_columns(pl.lit(q).alias("level")))
    return pl.concat(rows)
