"""MLflow for real: runs, registered versions, the champion gate, loading by alias."""

import polars as pl
import pytest

from jobs.retrain import retrain
from jobs.runtime import Runtime

pytestmark = pytest.mark.slow

ALL_ZERO = {c: ("zero",) for c in ("smooth", "erratic", "intermittent", "lumpy", "inactive")}


def test_a_worse_model_never_becomes_champion(settings, daily) -> None:
    rt = Runtime(settings)
    first = retrain(rt, daily)
    assert (first.model_version, first.alias) == ("1", "champion")

    bad = retrain(rt, daily, candidates=ALL_ZERO)
    assert bad.alias == "challenger"
    assert bad.challenger_loss > bad.champion_loss
    assert rt.registry.champion_version() == "1"

    again = retrain(rt, daily)
    assert again.alias == "champion"  # equal to the champion on the same windows
    assert rt.registry.champion_version() == again.model_version


def test_run_has_metrics_artifacts_and_a_loadable_model_and_leaves_mlflow_state_alone(
    settings, daily, tmp_path, monkeypatch
) -> None:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # restored after the test
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    mlflow.set_tracking_uri(elsewhere)  # a notebook's own choice, say
    try:
        rt = Runtime(settings)
        summary = retrain(rt, daily)
        # The registry used its own URI and left the process's MLflow state as it was.
        assert mlflow.get_tracking_uri() == elsewhere and mlflow.active_run() is None
        names = {e.name for e in mlflow.MlflowClient(elsewhere).search_experiments()}
        assert settings.experiment_name not in names
    finally:
        mlflow.set_tracking_uri(settings.tracking_uri)

    client = mlflow.MlflowClient(settings.tracking_uri)
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    assert {"wape", "rmsse", "mase", "train_seconds", "smooth.series"} <= set(run.data.metrics)
    assert run.data.params["freq"] == "daily" and run.data.params["series"] == "16"
    assert run.data.tags["replen.alias"] == "champion"
    names = {a.path for a in client.list_artifacts(summary.run_id)}
    assert {"champions.parquet", "backtest_errors.parquet", "champions_by_class.csv"} <= names
    assert "plots" in names
    version = client.get_model_version_by_alias(settings.model_name, "champion")
    assert (str(version.version), version.run_id) == (summary.model_version, summary.run_id)
    model = rt.registry.load("champion")
    out = pl.from_pandas(
        model.predict(
            daily.select("store_id", "sku_id", "date", "units", "stockout").to_pandas(),
            params={"horizon": 5, "quantiles": "0.5,0.95", "model_version": "1"},
        )
    )
    assert out.height == daily.select("store_id", "sku_id").n_unique() * 5
    assert {"mean", "q50", "q95", "model", "model_version"} <= set(out.columns)
    assert (out["q95"] >= out["q50"]).all() and set(out["model_version"]) == {"1"}
