"""The retrain, the champion gate and the forecast through an MLflow tracking server
(runs in PostgreSQL, artifacts in its folder), as a multi-process deployment runs them."""

from __future__ import annotations

import polars as pl
import pytest

from jobs.replenish import forecast_with_champion
from jobs.retrain import retrain
from jobs.runtime import Runtime

pytestmark = pytest.mark.slow

ALL_ZERO = {c: ("zero",) for c in ("smooth", "erratic", "intermittent", "lumpy", "inactive")}


def test_train_gate_load_champion_and_forecast_through_the_server(
    settings, daily, mlflow_server
) -> None:
    s = settings.model_copy(update={"mlflow_tracking_uri": mlflow_server})
    rt = Runtime(s)
    first = retrain(rt, daily)
    assert (first.model_version, first.alias) == ("1", "champion")
    worse = retrain(rt, daily, candidates=ALL_ZERO)
    assert worse.alias == "challenger" and worse.challenger_loss > worse.champion_loss

    # Another process (a new runtime) finds the champion by alias on the server.
    other = Runtime(s)
    assert other.registry.champion_version() == "1"
    forecast = forecast_with_champion(other, daily, horizon=7, quantiles=[0.5, 0.9])
    assert forecast.height == daily.select("store_id", "sku_id").n_unique() * 7
    assert set(forecast["model_version"].unique().to_list()) == {"1"}
    assert (forecast["q90"] >= forecast["q50"]).all()

    # The artifacts went to the server's store, not to a local folder of this process.
    import mlflow

    run = mlflow.MlflowClient(mlflow_server).get_run(first.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert not (s.mlflow_dir / "artifacts").exists()
    loaded = pl.read_parquet(
        mlflow.artifacts.download_artifacts(
            run_id=first.run_id, artifact_path="champions.parquet", tracking_uri=mlflow_server
        )
    )
    assert loaded.height == daily.select("store_id", "sku_id").n_unique()
