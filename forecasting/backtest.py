"""Rolling-origin backtest of candidate models, one statsforecast run per demand class."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl

from forecasting.candidates import FALLBACK, build, candidates_for, components

__all__ = ["backtest", "series_errors"]


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
            models=build(base), freq="1d", n_jobs=n_jobs, fallback_model=build([FALLBACK])[0]
        )
        cv = pl.DataFrame(
            sf.cross_validation(df=group, h=horizon, n_windows=n_windows, step_size=horizon)
        ).with_columns(pl.col(list(base)).cast(pl.Float64).fill_nan(None).clip(lower_bound=0.0))
        combos = [n for n in names if "+" in n]
        cv = cv.with_columns([pl.mean_horizontal(n.split("+")).alias(n) for n in combos])
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
    quantity that sizes an order); also ``mae, rmse, bias, wape, cum_rmse`` and ``rmsse``
    when ``scale`` (``unique_id, scale`` = mean squared one-step difference) is given.
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
                .alias("rmsse")
            )
            .drop("scale")
        )
    return out
