"""Rolling-origin backtest of candidate models, one statsforecast run per demand class."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

import polars as pl

from forecasting.candidates import FALLBACK, GLOBAL, build, candidates_for, components, freq_of
from forecasting.engine import cross_validation

__all__ = ["backtest", "cutoffs", "series_errors", "window_errors"]


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
    gap: int = 0,
    extra: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Cross-validate each class's candidates on its series.

    ``train``: ``unique_id, ds, y``; ``classes``: ``unique_id, demand_class``. Windows are
    :func:`cutoffs` apart by ``horizon`` periods; each scores the ``horizon`` periods after
    a ``gap`` (the days between the last data and the first day planned), the last window
    ending on the last day of history. ``extra``: forecasts of models fitted outside
    statsforecast (``unique_id, cutoff, ds`` and one column per model, e.g. the global
    ones), joined in by name. ``candidates`` overrides the candidate names per class.
    Returns long rows ``unique_id, demand_class, cutoff, ds, y, model, yhat``.
    """
    from statsforecast import StatsForecast

    outside = [c for c in (extra.columns if extra is not None else []) if c not in _KEYS]
    out = []
    for cls, ids in classes.group_by("demand_class", maintain_order=True):
        name = str(cls[0])
        names = (
            tuple(candidates[name])
            if candidates and name in candidates
            else candidates_for(name, costly=costly, freq=freq)
        )
        names = tuple(
            n for n in names if all(p in outside or p not in GLOBAL for p in n.split("+"))
        )
        group = train.join(ids.select("unique_id"), on="unique_id")
        if group.is_empty() or not names:
            continue
        base = components(names)
        stats_models = tuple(b for b in base if b not in outside)
        if stats_models:
            sf = StatsForecast(
                models=build(stats_models, freq),
                freq=freq_of(freq).alias,
                n_jobs=n_jobs,
                fallback_model=build([FALLBACK], freq)[0],
            )
            cv = cross_validation(
                sf, group, h=horizon + gap, n_windows=n_windows, step_size=horizon
            ).with_columns(
                pl.col("ds").cast(pl.Date),
                pl.col("cutoff").cast(pl.Date),
                pl.col(list(stats_models)).cast(pl.Float64).fill_nan(None).clip(lower_bound=0.0),
            )
        else:
            cv = _outside_windows(group, extra, horizon, gap, n_windows, freq)
        if gap:
            cv = cv.filter(pl.col("ds") > pl.col("cutoff") + _offset(gap, freq))
        used = [b for b in base if b in outside]
        if used and extra is not None:
            cv = cv.join(extra.select(*_KEYS, *used), on=list(_KEYS), how="left").with_columns(
                pl.col(used).fill_null(0.0)
            )
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


def cutoffs(
    last: date, *, horizon: int, n_windows: int, gap: int = 0, freq: str = "daily"
) -> list[date]:
    """The backtest origins, oldest first: the last one ``horizon + gap`` periods before
    ``last``, the others ``horizon`` periods apart (as statsforecast places them)."""
    return [
        _shift(last, -(horizon + gap + horizon * (n_windows - 1 - j)), freq)
        for j in range(n_windows)
    ]


_KEYS = ("unique_id", "cutoff", "ds")


def _shift(day: date, periods: int, freq: str) -> date:
    unit = freq_of(freq).alias[1:]
    return pl.select(pl.lit(day).dt.offset_by(f"{periods}{unit}")).item()


def _offset(periods: int, freq: str) -> pl.Expr:
    unit = freq_of(freq).alias[1:]
    return pl.lit(f"{periods}{unit}")


def _outside_windows(
    group: pl.DataFrame,
    extra: pl.DataFrame | None,
    horizon: int,
    gap: int,
    n_windows: int,
    freq: str,
) -> pl.DataFrame:
    """The backtest rows (actuals per window) when no statsforecast model is needed."""
    last = group["ds"].max()
    starts = cutoffs(last, horizon=horizon, n_windows=n_windows, gap=gap, freq=freq)  # type: ignore[arg-type]
    windows = pl.DataFrame({"cutoff": starts}, schema={"cutoff": pl.Date})
    rows = group.join(windows, how="cross").filter(
        (pl.col("ds") > pl.col("cutoff"))
        & (
            pl.col("ds")
            <= pl.col("cutoff").dt.offset_by(f"{horizon + gap}{freq_of(freq).alias[1:]}")
        )
    )
    return rows.select("unique_id", "ds", "cutoff", "y")


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
        pl.col("h").max().alias("h"),  # scored periods per window (censored ones left out)
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


def window_errors(cv: pl.DataFrame, scale: pl.DataFrame) -> pl.DataFrame:
    """Per series, model and backtest window: the scale-free losses selection compares.

    ``loss``: absolute error of the window total (the ordering loss) over ``scale_abs × h``
    (MASE-like, so series of any volume compare); ``rmsse``: the M5 measure. ``scale``:
    ``unique_id, scale, scale_abs`` (mean squared and absolute one-step differences).
    Returns ``unique_id, demand_class, model, cutoff, h, loss, rmsse``.
    """
    err = pl.col("yhat") - pl.col("y")
    return (
        cv.group_by("unique_id", "demand_class", "model", "cutoff")
        .agg(
            err.sum().abs().alias("_abs_total"),
            err.pow(2).mean().alias("_mse"),
            pl.len().alias("h"),
        )
        .join(scale, on="unique_id", how="left")
        .select(
            "unique_id",
            "demand_class",
            "model",
            "cutoff",
            "h",
            (
                pl.col("_abs_total") / (pl.col("scale_abs").clip(lower_bound=1e-9) * pl.col("h"))
            ).alias("loss"),
            (pl.col("_mse") / pl.col("scale").clip(lower_bound=1e-9)).sqrt().alias("rmsse"),
        )
    )
