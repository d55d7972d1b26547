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


def test_run_has_metrics_artifacts_and_a_loadable_model(settings, daily) -> None:
    import mlflow

    rt = Runtime(settings)
    summary = retrain(rt, daily)
    run = mlflow.get_run(summary.run_id)
    assert {"wape", "rmsse", "loss", "smooth.series"} & set(run.data.metrics)
    assert run.data.tags["replen.alias"] == "champion"
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(summary.run_id)}
    assert {"champions.parquet", "backtest_errors.parquet", "plots"} <= names
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
    out = pl.from_pandas(
        model.predict(
            daily.select("store_id", "sku_id", "date", "units", "stockout").to_pandas(),
            params={"horizon": 5, "quantiles": "0.5,0.95", "model_version": "1"},
        )
    )
    assert out.height == daily.select("store_id", "sku_id").n_unique() * 5
    assert {"mean", "q50", "q95", "model", "model_version"} <= set(out.columns)
