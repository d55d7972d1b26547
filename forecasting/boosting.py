"""A global gradient-boosting model trained across all series of a chain (scikit-learn).

Direct multi-horizon: each training row is a series, a forecast origin ``o`` and a day
``t = o + h``; features are what is known at ``o`` (recent levels, weekday means over 4 and
52 weeks, the same weekday's last sale — all lags at or beyond the horizon — price
relative to its usual level, days since the last sale) and what is planned for ``t``
(weekday, events, paydays, promotions), with store, department and category ids. The
target is the day's units over the series' 28-day level, weighted by that level (rows are
drawn in proportion to it), under a Poisson loss: one model learns shapes that every
series of any size shares. No month or day-of-year features: on M5 windows boosting that
leaned on yearly features lost.
HistGradientBoosting runs on one OpenMP thread: on a shared 2-core box, two threads under
contention were 5-10× slower, not faster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

__all__ = ["GBM", "Booster", "booster_forecast", "fit_booster"]

GBM = "gbm"
_EPS = 0.05
_STATE_DAYS = 400  # the longest window of the state (364 days) and some slack
_MAX_CATEGORIES = 250  # HistGradientBoosting bins categories into at most 255 codes
_NUMERIC = (
    "h",
    "dow",
    "l7",
    "l91",
    "l364",
    "nz28",
    "since_sale",
    "wd4",
    "wd52",
    "slag",
    "price_rel",
    "promo",
    "promo_t",
    "event",
    "payday",
)
_CATEGORICAL = ("store_id", "department", "category", "event_type")


@dataclass
class Booster:
    """A fitted global model and what it needs to build the same features again."""

    model: Any
    categories: dict[str, list[str]]
    cutoff: date
    horizon: int
    rows: int
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    extra: tuple[str, ...] = ()  # numeric covariates of the frame, read on the day forecast

    @property
    def features(self) -> list[str]:
        return [*_NUMERIC, *self.extra, *self.categories]


def fit_booster(
    frame: pl.DataFrame,
    cutoff: date,
    horizon: int,
    *,
    origins: int = 52,
    step: int = 7,
    max_rows: int = 20_000,
    max_iter: int = 80,
    learning_rate: float = 0.1,
    seed: int = 0,
    extra: tuple[str, ...] = (),
) -> Booster | None:
    """Fit on origins every ``step`` days over the ``origins`` steps before ``cutoff``
    (each with ``horizon`` days ahead, all ending by ``cutoff``), sampled to ``max_rows``.

    ``frame``: :func:`forecasting.covariates.model_frame`. ``extra``: more numeric columns
    of ``frame`` to use as features of the day forecast (known in advance, like a
    promotion), e.g. one a data scientist adds in a notebook. Returns None when there is not
    enough history for one origin.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    last_origin = cutoff - timedelta(days=horizon)
    first = frame["ds"].min()
    if first is None:
        return None
    starts = [last_origin - timedelta(days=step * k) for k in range(origins)]
    starts = [o for o in starts if o >= first + timedelta(days=28)]  # type: ignore[operator]
    if not starts:
        return None
    # State at an origin needs a year before it; older days add cost, not information.
    since = starts[-1] - timedelta(days=_STATE_DAYS)
    known = frame.filter((pl.col("ds") <= cutoff) & (pl.col("ds") > since))
    rows = _rows(_state(known), starts, horizon, known, extra=extra)
    rows = rows.filter(~pl.col("_censored_t") & pl.col("_y").is_not_null())
    if rows.height < 200:
        return None
    # Rows drawn in proportion to their series' level and fitted unweighted: the same
    # objective as weighting each ratio by the level, and far cheaper (scikit-learn bins
    # weighted data with weighted percentiles, 10× the cost of the trees here).
    if rows.height > max_rows:  # weighted sampling without replacement: the smallest E/w
        level = (rows["_l28"] + _EPS).to_numpy()
        keys = np.random.default_rng(seed).exponential(size=rows.height) / level
        rows = rows[np.sort(np.argpartition(keys, max_rows)[:max_rows])]
    categories = {
        c: sorted(v for v in known[c].unique().to_list() if v is not None)
        for c in _CATEGORICAL
        if c in known.columns and 0 < known[c].n_unique() <= _MAX_CATEGORIES
    }
    x, base = _matrix(rows, categories, extra)
    first_category = len(_NUMERIC) + len(extra)
    model = HistGradientBoostingRegressor(
        loss="poisson",
        max_iter=max_iter,
        learning_rate=learning_rate,
        max_leaf_nodes=31,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=False,
        categorical_features=list(range(first_category, first_category + len(categories))),
        random_state=seed,
    )
    started = time.perf_counter()
    with threadpool_limits(1, user_api="openmp"):
        model.fit(x, rows["_y"].to_numpy() / base)
    return Booster(
        model=model,
        categories=categories,
        cutoff=cutoff,
        horizon=horizon,
        rows=rows.height,
        seconds=time.perf_counter() - started,
        params={"origins": len(starts), "step": step, "max_iter": max_iter},
        extra=tuple(extra),
    )


def booster_forecast(
    booster: Booster,
    frame: pl.DataFrame,
    cutoffs: list[date],
    horizon: int,
    future: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Forecast ``horizon`` days after each cutoff with features known at the cutoff.

    ``future``: covariates of days after the history (``unique_id, ds`` and any of
    :data:`forecasting.covariates.COVARIATES`); without it the days' covariates are read
    from ``frame`` where it has them. Returns ``unique_id, cutoff, ds, gbm``.
    """
    from threadpoolctl import threadpool_limits

    if not cutoffs:
        return _empty()
    # Every state column looks only backwards, so one pass serves every cutoff.
    since = min(cutoffs) - timedelta(days=_STATE_DAYS)
    state = _state(frame.filter((pl.col("ds") <= max(cutoffs)) & (pl.col("ds") > since)))
    ahead = frame if future is None else pl.concat([frame, future], how="diagonal_relaxed")
    parts = []
    for cutoff in cutoffs:
        rows = _rows(state, [cutoff], horizon, ahead, target=False, extra=booster.extra)
        if rows.is_empty():
            continue
        x, base = _matrix(rows, booster.categories, booster.extra)
        with threadpool_limits(1, user_api="openmp"):
            ratio = booster.model.predict(x)
        parts.append(
            rows.select(
                "unique_id",
                pl.col("_origin").alias("cutoff"),
                pl.col("_t").alias("ds"),
                pl.Series(GBM, np.clip(ratio * base, 0.0, None)),
            )
        )
    return pl.concat(parts) if parts else _empty()


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"unique_id": pl.String, "cutoff": pl.Date, "ds": pl.Date, GBM: pl.Float64}
    )


def _state(known: pl.DataFrame) -> pl.DataFrame:
    """Per series and day: what is known at the end of that day."""
    uid = "unique_id"
    y = pl.col("y")
    observed = pl.when(pl.col("censored")).then(None).otherwise(y)
    sold = pl.when(observed > 0).then(pl.col("ds")).forward_fill().over(uid)
    return (
        known.sort(uid, "ds")
        .with_columns(pl.col("ds").dt.weekday().alias("_dow"))
        .with_columns(
            y.rolling_mean(7, min_samples=1).over(uid).alias("l7"),
            y.rolling_mean(28, min_samples=1).over(uid).alias("_l28"),
            y.rolling_mean(91, min_samples=1).over(uid).alias("l91"),
            y.rolling_mean(364, min_samples=28).over(uid).alias("l364"),
            (observed > 0).cast(pl.Float64).rolling_mean(28, min_samples=1).over(uid).alias("nz28"),
            (pl.col("ds") - sold).dt.total_days().clip(upper_bound=365).alias("since_sale"),
            y.rolling_mean(4, min_samples=1).over(uid, "_dow").alias("wd4"),
            y.rolling_mean(52, min_samples=4).over(uid, "_dow").alias("wd52"),
            pl.col("price_rel").forward_fill().over(uid).alias("price_rel"),
        )
    )


def _rows(
    state: pl.DataFrame,
    origins: list[date],
    horizon: int,
    source: pl.DataFrame,
    *,
    target: bool = True,
    extra: tuple[str, ...] = (),
) -> pl.DataFrame:
    """One row per series × origin × day ahead: features, and with ``target`` the day's
    units and whether they were censored. The day's planned covariates come from
    ``source``."""
    at_origin = state.filter(
        pl.col("ds").is_in(pl.Series(origins, dtype=pl.Date).implode())
    ).select(
        "unique_id",
        pl.col("ds").alias("_origin"),
        "_l28",
        "l7",
        "l91",
        "l364",
        "nz28",
        "since_sale",
        "price_rel",
        pl.col("promo").fill_null(0.0),
        "store_id",
        "department",
        "category",
    )
    steps = pl.DataFrame({"h": list(range(1, horizon + 1))}, schema={"h": pl.Int64})
    rows = at_origin.join(steps, how="cross").with_columns(
        (pl.col("_origin") + pl.duration(days=pl.col("h"))).alias("_t")
    )
    rows = rows.with_columns(
        (pl.col("_t") - pl.duration(days=7 * ((pl.col("h") + 6) // 7))).alias("_lag_day"),
        pl.col("_t").dt.weekday().alias("dow"),
    )
    seasonal = state.select(
        "unique_id", pl.col("ds").alias("_lag_day"), "wd4", "wd52", pl.col("y").alias("slag")
    )
    window = (pl.col("ds") > min(origins)) & (
        pl.col("ds") <= max(origins) + timedelta(days=horizon)
    )
    planned = (
        source.filter(window)
        .select(
            "unique_id",
            pl.col("ds").alias("_t"),
            pl.col("event"),
            pl.col("payday"),
            pl.col("promo").alias("promo_t"),
            pl.col("event_type"),
            *[
                (pl.col(c) if c in source.columns else pl.lit(None, dtype=pl.Float64)).alias(
                    f"x_{c}"
                )
                for c in extra
            ],
            *([pl.col("y").alias("_y"), pl.col("censored").alias("_censored_t")] if target else []),
        )
        .unique(["unique_id", "_t"], keep="last")
    )
    out = rows.join(seasonal, on=["unique_id", "_lag_day"], how="left").join(
        planned, on=["unique_id", "_t"], how="left"
    )
    if target:
        out = out.with_columns(pl.col("_censored_t").fill_null(True))
    return out


def _matrix(
    rows: pl.DataFrame, categories: dict[str, list[str]], extra: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    base = (pl.col("_l28") + _EPS).alias("_base")
    ratios = {c: pl.col(c) / base for c in ("l7", "l91", "l364", "wd4", "slag")}
    ratios["wd52"] = pl.col("wd52") / (pl.col("l364") + _EPS)
    coded = [
        pl.col(c)
        .replace_strict(values, list(range(len(values))), default=None, return_dtype=pl.Float64)
        .alias(c)
        for c, values in categories.items()
    ]
    known_zero = {"event", "payday", "promo", "promo_t"}  # unknown: none planned
    x = (
        rows.select(
            *[
                (ratios[c] if c in ratios else pl.col(c).cast(pl.Float64)).alias(c)
                for c in _NUMERIC
                if c not in known_zero
            ],
            *[pl.col(c).cast(pl.Float64).fill_null(0.0) for c in _NUMERIC if c in known_zero],
            *[pl.col(f"x_{c}").cast(pl.Float64) for c in extra],
            *coded,
        )
        .to_numpy()
        .astype(np.float64)
    )
    x[:, np.isnan(x).all(axis=0)] = 0.0  # a feature never known is a constant, not an error
    return x, rows.select(base).to_series().to_numpy()
