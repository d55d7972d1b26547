"""The retrain on a Dask cluster (a LocalCluster on loopback): statsforecast on partitions
of series, costly fits as Dask tasks; the same champions and forecasts as locally."""

from __future__ import annotations

import json
import os
import subprocess

import polars as pl
import pytest
from support import replen_exe

from forecasting.chunks import train_chunked
from forecasting.engine import DaskEngine, LocalEngine, engine_context
from forecasting.predict import forecast

pytestmark = pytest.mark.slow

KEYS = ["store_id", "sku_id"]


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes and a scheduler, all on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local.scheduler_address


def _assert_same(left: pl.DataFrame, right: pl.DataFrame) -> None:
    """Equal frames: every column exactly, floats to 1e-9 relative."""
    assert left.columns == right.columns and left.height == right.height
    for name in left.columns:
        if left.schema[name].is_float():
            assert left[name].to_list() == pytest.approx(right[name].to_list(), rel=1e-9), name
        else:
            assert left[name].equals(right[name]), name


def _train(daily: pl.DataFrame, engine, **kw):  # type: ignore[no-untyped-def]
    keys = daily.select(KEYS).unique()
    return train_chunked(
        keys,
        lambda part: daily.join(part, on=KEYS, how="semi"),
        chunk_series=8,
        engine=engine,
        horizon=14,
        n_windows=2,
        **kw,
    )


def test_dask_and_local_pick_the_same_champions_and_forecast_alike(daily, cluster) -> None:
    local = _train(daily, LocalEngine())
    engine = DaskEngine(cluster)
    try:
        remote = _train(daily, engine)
    finally:
        engine.close()
    assert (local.chunks, remote.chunks, remote.engine) == (2, 2, "dask")
    # Same models everywhere; sums may differ in the last bit (polars aggregates in parallel).
    _assert_same(remote.result.champions, local.result.champions)
    errors = local.result.errors
    order = [c for c, t in errors.schema.items() if not t.is_float()]  # a total order
    _assert_same(remote.result.errors.sort(order), errors.sort(order))
    for key, value in local.result.metrics.items():
        assert remote.result.metrics[key] == pytest.approx(value, rel=1e-9), key
    a = forecast(
        daily, local.result.champions, horizon=14, quantiles=[0.5, 0.95], model_version="v"
    )
    b = forecast(
        daily, remote.result.champions, horizon=14, quantiles=[0.5, 0.95], model_version="v"
    )
    _assert_same(a.sort([*KEYS, "date"]), b.sort([*KEYS, "date"]))


def test_costly_models_are_fitted_as_dask_tasks_with_the_same_parameters(daily, cluster) -> None:
    from forecasting.fitted import fit_costly
    from forecasting.history import keys_frame, to_training_frame

    train_df = to_training_frame(daily)
    picks = keys_frame(daily.select(KEYS).unique().sort(KEYS).head(4)).select(
        "unique_id", pl.lit("auto_ets").alias("model")
    )
    alone = fit_costly(train_df, picks)
    engine = DaskEngine(cluster)
    try:
        with engine_context(engine):
            spread = fit_costly(train_df, picks)
    finally:
        engine.close()
    assert spread.keys() == alone.keys() and len(spread) == 4
    for uid, models in alone.items():
        assert str(spread[uid]["auto_ets"].model_) == str(models["auto_ets"].model_)


def test_replen_train_engine_dask_from_the_command_line(settings, daily, cluster, tmp_path):
    path = tmp_path / "history.parquet"
    daily.write_parquet(path)
    exe = replen_exe()
    env = {
        **os.environ,
        "REPLEN_DATA_DIR": str(settings.data_dir),
        "REPLEN_MLFLOW_DIR": str(settings.mlflow_dir),
        "REPLEN_TRAIN_CHUNK_SERIES": "8",
    }
    args = ["--history", str(path), "--json", "--engine", "dask", "--address", cluster]
    done = subprocess.run(
        [exe, "train", *args], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["engine"], summary["chunks"], summary["alias"]) == ("dask", 2, "champion")
    assert summary["series"] == daily.select(KEYS).n_unique()
