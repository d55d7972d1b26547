"""Forecast accuracy and cost on the M5 subset, the M5 way, against statsforecast baselines.

Daily (default): trains to 2016-03-27 and scores 2016-03-28..2016-04-24 (28 days) on the
280 store×item series of ../shared/data/m5_subset; days after 2016-04-24 in the file are a
placeholder block, not sales, and are ignored. Reports, in one run:
- level-12 WRMSSE (weights: dollar sales of the last 28 training days; RMSSE scale: mean
  squared one-step difference from the first non-zero sale);
- WSPL over quantiles 0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975, 0.995;
- coverage of Replen's protection-period totals (7, 14 and 28 days from the origin) at
  0.8, 0.9 and 0.95, through the planner's own lead-time demand helper: over all series,
  and over the series not classed inactive (their zero forecast has no spread to cover a
  revival);
- wall time for Replen (weekly retrain: data checks, backtest, select, calibrate, fit the
  global model; then forecast) and for Naive, seasonal naive, SES, Croston, optimized
  Croston, SBA, TSB, ADIDA, iMAPA, AutoETS and the AutoETS + DynamicOptimizedTheta mean.
  Baseline quantiles: conformal intervals (statsforecast ``ConformalIntervals``), AutoETS
  and Theta native intervals. Replen sees what the feature store holds for M5: prices,
  department, category, the M5 calendar's events and the state's SNAP days.
``--freq weekly`` / ``monthly`` aggregate the same series (weeks Monday..Sunday, calendar
months) and score 4 weeks (2016-03-28..04-24) / 3 months (2016-01..03) against the same
baselines with yearly seasons (series with fewer than two horizons of history sit out: the
conformal baselines cannot run on them).
Aims: WRMSSE ≤ 0.95 × best baseline, WSPL ≤ 0.90 × best baseline, retrain ≥ 20× faster than
AutoETS + DOTheta. ``--series N`` runs on a sample (CI-sized); ``--skip-costly`` drops the
AutoETS/DOTheta baselines.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from _common import SHARED, cpu_seconds, emit, load_m5, need_shared, peak_rss_mb

QUANTILES = [0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975, 0.995]
LEVELS = [99, 95, 67, 50]  # two-sided intervals whose bounds are the quantiles above
DATA_END = date(2016, 4, 24)  # later days in the file are a placeholder block, not sales
SPANS = (7, 14, 28)
SERVICE = (0.8, 0.9, 0.95)


@dataclass(frozen=True)
class Setup:
    """How one frequency is scored: last training period, horizon, season, alias."""

    train_end: date
    horizon: int
    season: int
    alias: str
    truncate: str | None  # polars truncation of a day to its period


SETUPS = {
    "daily": Setup(date(2016, 3, 27), 28, 7, "1d", None),
    "weekly": Setup(date(2016, 3, 21), 4, 52, "1w", "1w"),  # weeks by their Monday
    "monthly": Setup(date(2015, 12, 1), 3, 12, "1mo", "1mo"),  # months by their 1st
}


def aggregate(frame: pl.DataFrame, setup: Setup) -> pl.DataFrame:
    """Daily rows → one row per series and period (units summed, mean price)."""
    if setup.truncate is None:
        return frame
    return (
        frame.with_columns(pl.col("date").dt.truncate(setup.truncate))
        .group_by("store_id", "sku_id", "date")
        .agg(pl.col("units").sum(), pl.col("price").mean())
        .sort("store_id", "sku_id", "date")
    )


def weights_and_scales(train: pl.DataFrame, setup: Setup) -> pl.DataFrame:
    periods = train["date"].unique().sort().tail(28 if setup.truncate is None else setup.horizon)
    recent = train.filter(pl.col("date").is_in(periods.implode()))
    dollars = (
        recent.with_columns(
            pl.col("price").forward_fill().over("store_id", "sku_id").fill_null(0.0)
        )
        .group_by("store_id", "sku_id")
        .agg((pl.col("units") * pl.col("price")).sum().alias("dollars"))
    )
    scales = train.group_by("store_id", "sku_id").agg(
        pl.col("units").diff().pow(2).mean().alias("scale2"),
        pl.col("units").diff().abs().mean().alias("scale1"),
    )
    out = dollars.join(scales, on=["store_id", "sku_id"])
    return out.with_columns((pl.col("dollars") / pl.col("dollars").sum()).alias("weight"))


def score(pred: pl.DataFrame, test: pl.DataFrame, ws: pl.DataFrame) -> dict[str, float]:
    """WRMSSE from ``mean``; WSPL from the quantile columns when present."""
    j = test.join(pred, on=["store_id", "sku_id", "date"], how="left").join(
        ws, on=["store_id", "sku_id"]
    )
    if j["mean"].null_count():
        raise ValueError(f"{j['mean'].null_count()} test periods have no forecast")
    per = j.group_by("store_id", "sku_id").agg(
        ((pl.col("units") - pl.col("mean")).pow(2).mean() / pl.col("scale2").first())
        .sqrt()
        .alias("rmsse"),
        pl.col("weight").first(),
    )
    out = {"wrmsse": float((per["rmsse"] * per["weight"]).sum())}
    qcols = [_qcol(q) for q in QUANTILES]
    if all(c in j.columns for c in qcols):
        spl = j.group_by("store_id", "sku_id").agg(
            (
                pl.sum_horizontal(
                    [_pinball(pl.col("units"), pl.col(_qcol(q)), q) for q in QUANTILES]
                ).mean()
                / pl.col("scale1").first()
                / len(QUANTILES)
            ).alias("spl"),
            pl.col("weight").first(),
        )
        out["wspl"] = float((spl["spl"] * spl["weight"]).sum())
        for q in (0.025, 0.5, 0.975):
            out[f"coverage_{q}"] = float((j["units"] <= j[_qcol(q)]).mean())
    return out


def _pinball(y: pl.Expr, qhat: pl.Expr, q: float) -> pl.Expr:
    diff = y - qhat
    return pl.max_horizontal(q * diff, (q - 1) * diff)


def _qcol(q: float) -> str:
    from kernel.distribution import quantile_column

    return quantile_column(q)


def replen(
    train: pl.DataFrame, future: pl.DataFrame, args: argparse.Namespace, setup: Setup
) -> tuple[pl.DataFrame, float, float, object]:
    # Libraries are imported before either side is timed, as the baselines' statsforecast
    # is: scikit-learn's import (scipy.stats) alone took 4-10 s on this shared machine, a
    # cost a scheduler process pays once, not per retrain, and no part of the models' cost.
    import sklearn.ensemble  # noqa: F401
    import statsforecast.models  # noqa: F401

    from forecasting.predict import forecast
    from forecasting.train import train as fit

    t0, c0 = time.perf_counter(), cpu_seconds()
    result = fit(
        train,
        horizon=args.backtest_horizon or setup.horizon,
        n_windows=args.windows,
        n_jobs=args.jobs,
        switch=args.switch,
        freq=args.freq,
    )
    retrain_s, retrain_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    t1 = time.perf_counter()
    fc = forecast(
        pl.concat([train, future], how="diagonal_relaxed"),
        result.champions,
        horizon=setup.horizon,
        quantiles=QUANTILES,
        model_version="bench",
        n_jobs=args.jobs,
        freq=args.freq,
        booster=result.booster,
    )
    return fc, (retrain_s, retrain_cpu), time.perf_counter() - t1, result


def protection_coverage(
    fc: pl.DataFrame, test: pl.DataFrame, keys: pl.DataFrame | None = None
) -> dict[str, float]:
    """Share of series (of ``keys``, default all) whose actual total over the first P days
    lies at or under the planner's demand quantile at each service level
    (replenishment.leadtime)."""
    from replenishment.leadtime import lead_time_demand

    if keys is None:
        keys = fc.select("store_id", "sku_id").unique()
    first = test["date"].min()
    out: dict[str, float] = {}
    for span in SPANS:
        actual = (
            test.filter(pl.col("date") < pl.lit(first) + pl.duration(days=span))
            .group_by("store_id", "sku_id")
            .agg(pl.col("units").sum().alias("_y"))
        )
        for level in SERVICE:
            spans = keys.with_columns(
                pl.lit(float(span)).alias("protection_days"),
                pl.lit(0.0).alias("lead_time_std"),
                pl.lit(level).alias("service_level"),
            )
            demand = lead_time_demand(fc, spans).join(actual, on=["store_id", "sku_id"])
            hit = (demand["_y"] <= demand["demand_quantile"] + 1e-9).mean()
            out[f"p{span}_q{round(level * 100)}"] = round(float(hit), 3)  # type: ignore[arg-type]
    return out


def baselines(
    train: pl.DataFrame, costly: bool, args: argparse.Namespace, setup: Setup
) -> dict[str, tuple[pl.DataFrame, float, float]]:
    from statsforecast import StatsForecast
    from statsforecast.models import (
        ADIDA,
        IMAPA,
        TSB,
        AutoETS,
        CrostonClassic,
        CrostonOptimized,
        CrostonSBA,
        DynamicOptimizedTheta,
        Naive,
        SeasonalNaive,
        SimpleExponentialSmoothingOptimized,
    )
    from statsforecast.utils import ConformalIntervals

    h, season = setup.horizon, setup.season
    df = train.select(
        pl.concat_str(["store_id", "sku_id"], separator="|").alias("unique_id"),
        pl.col("date").alias("ds"),
        pl.col("units").alias("y"),
    )
    conformal = ConformalIntervals(h=h, n_windows=2)
    models = {
        "naive": Naive(alias="naive"),
        "seasonal_naive": SeasonalNaive(season, alias="seasonal_naive"),
        "ses": SimpleExponentialSmoothingOptimized(alias="ses", prediction_intervals=conformal),
        "croston": CrostonClassic(alias="croston", prediction_intervals=conformal),
        "croston_optimized": CrostonOptimized(
            alias="croston_optimized", prediction_intervals=conformal
        ),
        "sba": CrostonSBA(alias="sba", prediction_intervals=conformal),
        "tsb": TSB(0.2, 0.2, alias="tsb", prediction_intervals=conformal),
        "adida": ADIDA(alias="adida", prediction_intervals=conformal),
        "imapa": IMAPA(alias="imapa", prediction_intervals=conformal),
    }
    if costly:
        models["auto_ets"] = AutoETS(season_length=season, alias="auto_ets")
        models["dyn_opt_theta"] = DynamicOptimizedTheta(season_length=season, alias="dyn_opt_theta")
    out: dict[str, tuple[pl.DataFrame, float, float]] = {}
    for name, model in models.items():
        t0, c0 = time.perf_counter(), cpu_seconds()
        sf = StatsForecast(models=[model], freq=setup.alias, n_jobs=args.jobs)
        fc = pl.DataFrame(sf.forecast(df=df, h=h, level=LEVELS))
        out[name] = (_to_contract(fc, name), time.perf_counter() - t0, cpu_seconds() - c0)
    if costly:
        ets, t_ets, c_ets = out["auto_ets"]
        dot, t_dot, c_dot = out["dyn_opt_theta"]
        cols = ["mean", *[_qcol(q) for q in QUANTILES]]
        both = ets.join(dot, on=["store_id", "sku_id", "date"], suffix="_d")
        ens = both.select(
            "store_id",
            "sku_id",
            "date",
            *[((pl.col(c) + pl.col(f"{c}_d")) / 2).alias(c) for c in cols],
        )
        out["ets_dot"] = (ens, t_ets + t_dot, c_ets + c_dot)
    return out


def _to_contract(fc: pl.DataFrame, name: str) -> pl.DataFrame:
    parts = pl.col("unique_id").str.split_exact("|", 1)
    cols = {"mean": pl.col(name)}
    for lv in LEVELS:
        lo, hi = (100 - lv) / 200, 1 - (100 - lv) / 200
        cols[_qcol(lo)] = pl.col(f"{name}-lo-{lv}")
        cols[_qcol(hi)] = pl.col(f"{name}-hi-{lv}")
    cols[_qcol(0.5)] = pl.col(name)
    return fc.select(
        parts.struct.field("field_0").alias("store_id"),
        parts.struct.field("field_1").alias("sku_id"),
        pl.col("ds").cast(pl.Date).alias("date"),
        *[e.cast(pl.Float64).clip(lower_bound=0).alias(k) for k, e in cols.items()],
    )


def split(frame: pl.DataFrame, setup: Setup) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Training rows, test rows and the test periods' known covariates (units unknown)."""
    train = frame.filter(pl.col("date") <= setup.train_end)
    last_test = pl.lit(setup.train_end).dt.offset_by(f"{setup.horizon}{setup.alias[1:]}")
    test = frame.filter((pl.col("date") > setup.train_end) & (pl.col("date") <= last_test))
    future = test.drop("units", "price").with_columns(pl.lit(None, dtype=pl.Float64).alias("units"))
    return train, test.select("store_id", "sku_id", "date", "units"), future


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=SHARED / "m5_subset" / "sales.csv.gz")
    parser.add_argument("--series", type=int, default=None, help="sample N series")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--freq", choices=sorted(SETUPS), default="daily")
    parser.add_argument("--skip-costly", action="store_true")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backtest-horizon", type=int, default=None)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--switch", type=float, default=1.0)
    parser.add_argument("--replen-only", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    need_shared(args.data)
    setup = SETUPS[args.freq]

    daily = args.freq == "daily"
    frame = load_m5(args.data, args.series, args.seed, covariates=daily)
    frame = aggregate(frame.filter(pl.col("date") <= DATA_END), setup)
    train, test, future = split(frame, setup)
    if not daily:  # conformal intervals need two windows of history: shorter series sit out
        enough = (
            train.group_by("store_id", "sku_id")
            .len()
            .filter(pl.col("len") > 2 * setup.horizon)
            .select("store_id", "sku_id")
        )
        train, test = (f.join(enough, on=["store_id", "sku_id"]) for f in (train, test))
    ws = weights_and_scales(train, setup)
    n_series = train.select("store_id", "sku_id").n_unique()

    fc, (retrain_s, retrain_cpu), forecast_s, result = replen(train, future, args, setup)
    rows = {
        "replen": {**score(fc, test, ws), "seconds": retrain_s + forecast_s, "cpu": retrain_cpu}
    }
    held = protection_coverage(fc, test) if daily else {}
    active = result.champions.filter(pl.col("demand_class") != "inactive")  # type: ignore[attr-defined]
    held_active = (
        protection_coverage(fc, test, active.select("store_id", "sku_id")) if daily else {}
    )
    if args.replen_only:
        emit(
            {
                "replen": rows["replen"],
                "protection_coverage": held,
                "protection_coverage_active": held_active,
            }
        )
        return
    for name, (pred, secs, cpu) in baselines(train, not args.skip_costly, args, setup).items():
        rows[name] = {**score(pred, test, ws), "seconds": secs, "cpu": cpu}

    base = {k: v for k, v in rows.items() if k != "replen"}
    best_w = min(base.items(), key=lambda kv: kv[1]["wrmsse"])
    best_s = min(((k, v) for k, v in base.items() if "wspl" in v), key=lambda kv: kv[1]["wspl"])
    ets_dot_s = base.get("ets_dot", {}).get("seconds")
    ets_dot_cpu = base.get("ets_dot", {}).get("cpu")
    if not args.json:
        print(
            f"{'method':<18}{'WRMSSE':>8}{'WSPL':>8}{'cov2.5':>8}{'cov50':>8}{'cov97.5':>8}"
            f"{'seconds':>9}"
        )
        for name, r in rows.items():
            print(
                f"{name:<18}{r['wrmsse']:>8.3f}{r.get('wspl', float('nan')):>8.3f}"
                f"{r.get('coverage_0.025', float('nan')):>8.3f}"
                f"{r.get('coverage_0.5', float('nan')):>8.3f}"
                f"{r.get('coverage_0.975', float('nan')):>8.3f}{r['seconds']:>9.1f}"
            )
        if held:
            print("protection-period coverage (hold-out):", held)
    r = rows["replen"]
    m = result.metrics  # type: ignore[attr-defined]
    emit(
        {
            "benchmark": "forecast_m5",
            "freq": args.freq,
            "series": n_series,
            "wrmsse": round(r["wrmsse"], 4),
            "wspl": round(r["wspl"], 4),
            "best_baseline": best_w[0],
            "best_baseline_wrmsse": round(best_w[1]["wrmsse"], 4),
            "wrmsse_ratio": round(r["wrmsse"] / best_w[1]["wrmsse"], 3),
            "best_baseline_wspl_method": best_s[0],
            "best_baseline_wspl": round(best_s[1]["wspl"], 4),
            "wspl_ratio": round(r["wspl"] / best_s[1]["wspl"], 3),
            "seconds": round(r["seconds"], 2),
            "retrain_seconds": round(retrain_s, 2),
            "forecast_seconds": round(forecast_s, 2),
            "ets_dot_seconds": round(ets_dot_s, 2) if ets_dot_s else None,
            "speedup_vs_ets_dot": round(ets_dot_s / retrain_s, 1) if ets_dot_s else None,
            "retrain_cpu_seconds": round(retrain_cpu, 2),
            "ets_dot_cpu_seconds": round(ets_dot_cpu, 2) if ets_dot_cpu else None,
            "cpu_speedup_vs_ets_dot": round(ets_dot_cpu / retrain_cpu, 1) if ets_dot_cpu else None,
            "holdout_protection_coverage": held,
            "holdout_protection_coverage_active": held_active,
            "active_series": active.height,
            "backtest_coverage": {
                k.removeprefix("coverage."): round(v, 3)
                for k, v in m.items()
                if k.startswith("coverage.")
            },
            "retrain_parts_seconds": {
                k.removeprefix("seconds."): round(v, 2)
                for k, v in m.items()
                if k.startswith("seconds.")
            },
            "champions": dict(
                result.champions.group_by("model").len().sort("len", descending=True).iter_rows()  # type: ignore[attr-defined]
            ),
            "baselines": {k: {m: round(x, 4) for m, x in v.items()} for k, v in base.items()},
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


if __name__ == "__main__":
    main()
