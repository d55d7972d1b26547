"""Forecast accuracy and cost on the M5 subset, the M5 way, against statsforecast baselines.

Holds out the last 28 days (train to 2016-04-24, score 2016-04-25..2016-05-22) of the 280
store×item series in ../shared/data/m5_subset and reports, in one run:
- level-12 WRMSSE (weights: dollar sales of the last 28 training days; RMSSE scale: mean
  squared one-step difference from the first non-zero sale);
- WSPL over quantiles 0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975, 0.995;
- wall time, for Replen (weekly retrain: classify, backtest, select; then forecast) and for
  Naive, seasonal naive, SES, Croston, optimized Croston, SBA, TSB, ADIDA, iMAPA, AutoETS and
  the AutoETS + DynamicOptimizedTheta mean. Baseline quantiles: conformal intervals
  (statsforecast ``ConformalIntervals``), AutoETS native intervals.
Aims: WRMSSE ≤ 0.95 × best baseline, WSPL ≤ 0.90 × best baseline, retrain ≥ 20× faster than
AutoETS + DOTheta. ``--series N`` runs on a sample (CI-sized); ``--skip-costly`` drops the
AutoETS/DOTheta baselines.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from _common import SHARED, emit, load_m5, need_shared, peak_rss_mb

QUANTILES = [0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975, 0.995]
LEVELS = [99, 95, 67, 50]  # two-sided intervals whose bounds are the quantiles above
TRAIN_END = date(2016, 3, 27)
DATA_END = date(2016, 4, 24)  # later days in the file are a placeholder block, not sales
H = 28


def load(path: Path, series: int | None, seed: int) -> pl.DataFrame:
    return load_m5(path, series, seed)


def weights_and_scales(train: pl.DataFrame) -> pl.DataFrame:
    last28 = train.filter(pl.col("date") > pl.lit(TRAIN_END) - pl.duration(days=28))
    dollars = (
        last28.with_columns(
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
        raise ValueError(f"{j['mean'].null_count()} test days have no forecast")
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
    from forecasting.quantiles import quantile_column

    return quantile_column(q)


def replen(
    train: pl.DataFrame, n_jobs: int, horizon: int, windows: int, switch: float
) -> tuple[pl.DataFrame, float, float, dict]:
    from forecasting.predict import forecast
    from forecasting.train import train as fit

    t0 = time.perf_counter()
    result = fit(train, horizon=horizon, n_windows=windows, n_jobs=n_jobs, switch=switch)
    retrain_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    fc = forecast(
        train,
        result.champions,
        horizon=H,
        quantiles=QUANTILES,
        model_version="bench",
        n_jobs=n_jobs,
    )
    forecast_s = time.perf_counter() - t1
    classes = dict(result.champions.group_by("demand_class").len().iter_rows())
    return fc, retrain_s, forecast_s, classes


def baselines(
    train: pl.DataFrame, n_jobs: int, costly: bool
) -> dict[str, tuple[pl.DataFrame, float]]:
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

    df = train.select(
        pl.concat_str(["store_id", "sku_id"], separator="|").alias("unique_id"),
        pl.col("date").alias("ds"),
        pl.col("units").alias("y"),
    )
    conformal = ConformalIntervals(h=H, n_windows=2)
    cheap = {
        "naive": Naive(alias="naive"),
        "seasonal_naive": SeasonalNaive(7, alias="seasonal_naive"),
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
    models = dict(cheap)
    if costly:
        models["auto_ets"] = AutoETS(season_length=7, alias="auto_ets")
        models["dyn_opt_theta"] = DynamicOptimizedTheta(season_length=7, alias="dyn_opt_theta")
    out: dict[str, tuple[pl.DataFrame, float]] = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        sf = StatsForecast(models=[model], freq="1d", n_jobs=n_jobs)
        fc = pl.DataFrame(sf.forecast(df=df, h=H, level=LEVELS))
        out[name] = (_to_contract(fc, name), time.perf_counter() - t0)
    if costly:
        ets, t_ets = out["auto_ets"]
        dot, t_dot = out["dyn_opt_theta"]
        cols = ["mean", *[_qcol(q) for q in QUANTILES]]
        both = ets.join(dot, on=["store_id", "sku_id", "date"], suffix="_d")
        ens = both.select(
            "store_id",
            "sku_id",
            "date",
            *[((pl.col(c) + pl.col(f"{c}_d")) / 2).alias(c) for c in cols],
        )
        out["ets_dot"] = (ens, t_ets + t_dot)
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=SHARED / "m5_subset" / "sales.csv.gz")
    parser.add_argument("--series", type=int, default=None, help="sample N series")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-costly", action="store_true")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backtest-horizon", type=int, default=28)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--switch", type=float, default=0.3)
    parser.add_argument("--replen-only", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    need_shared(args.data)

    frame = load(args.data, args.series, args.seed).filter(pl.col("date") <= DATA_END)
    train = frame.filter(pl.col("date") <= TRAIN_END)
    test = frame.filter(
        (pl.col("date") > TRAIN_END) & (pl.col("date") <= pl.lit(TRAIN_END) + pl.duration(days=H))
    )
    ws = weights_and_scales(train)
    n_series = train.select("store_id", "sku_id").n_unique()

    fc, retrain_s, forecast_s, classes = replen(
        train, args.jobs, args.backtest_horizon, args.windows, args.switch
    )
    rows = {"replen": {**score(fc, test, ws), "seconds": retrain_s + forecast_s}}
    if args.replen_only:
        print(rows["replen"])
        return
    for name, (pred, secs) in baselines(train, args.jobs, not args.skip_costly).items():
        rows[name] = {**score(pred, test, ws), "seconds": secs}

    base = {k: v for k, v in rows.items() if k != "replen"}
    best_w = min(base.items(), key=lambda kv: kv[1]["wrmsse"])
    best_s = min(((k, v) for k, v in base.items() if "wspl" in v), key=lambda kv: kv[1]["wspl"])
    ets_dot_s = base.get("ets_dot", {}).get("seconds")
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
    r = rows["replen"]
    emit(
        {
            "benchmark": "forecast_m5",
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
            "classes": classes,
            "baselines": {k: {m: round(x, 4) for m, x in v.items()} for k, v in base.items()},
            "peak_rss_mb": round(peak_rss_mb()),
        }
    )


if __name__ == "__main__":
    main()
