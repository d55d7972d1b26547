"""MLflow as the forecasting stage's memory: runs, the pyfunc model, champion/challenger aliases.

The only module that imports mlflow (lazily: it is slow to import).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from forecasting.gate import GateDecision
from forecasting.train import TrainResult

__all__ = ["Registered", "Registry", "demand_model_class"]

_CHAMPIONS = "champions.parquet"


def demand_model_class() -> type:
    """The pyfunc class, built on first use so that importing this module stays cheap."""
    import mlflow.pyfunc

    class DemandModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
        """Per-series champion models: history (daily sales) in, forecast contract out.

        Predict-time params: ``horizon`` (days), ``quantiles`` (comma-separated) and
        ``model_version`` (stamped on every row).
        """

        def load_context(self, context):  # type: ignore[no-untyped-def]
            import pickle

            self.champions = pl.read_parquet(context.artifacts["champions"])
            self.fitted = {}
            if "fitted" in context.artifacts:
                with open(context.artifacts["fitted"], "rb") as handle:
                    self.fitted = pickle.load(handle)

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            # No type hints here: MLflow would read them as an input schema.
            from forecasting.predict import forecast

            params = params or {}
            history = (
                pl.from_pandas(model_input)
                if not isinstance(model_input, pl.DataFrame)
                else model_input
            )
            if history.schema["date"] != pl.Date:
                history = history.with_columns(pl.col("date").cast(pl.Date))
            quantiles = [float(q) for q in str(params.get("quantiles", "0.5,0.9,0.95")).split(",")]
            out = forecast(
                history,
                self.champions,
                horizon=int(params.get("horizon", 28)),
                quantiles=quantiles,
                model_version=str(params.get("model_version", "unregistered")),
                freq=str(params.get("freq", "daily")),
                fitted=self.fitted,
            )
            return out.to_pandas()

    return DemandModel


@dataclass(frozen=True)
class Registered:
    """What a retrain left in MLflow."""

    run_id: str
    version: str
    alias: str  # "champion" or "challenger"
    challenger_loss: float | None
    champion_loss: float | None


class Registry:
    """Tracking and model registry at ``tracking_uri``: a SQLite file by default, or an
    MLflow tracking server (``http://host:port``) that stores runs in its database and
    artifacts where it was told to."""

    def __init__(
        self, tracking_uri: str, experiment: str, model_name: str, artifact_root: Path
    ) -> None:
        import mlflow

        self.model_name = model_name
        self.tracking_uri = tracking_uri
        mlflow.set_tracking_uri(tracking_uri)
        self._mlflow = mlflow
        found = mlflow.get_experiment_by_name(experiment)
        if found is None and tracking_uri.startswith(("http://", "https://")):
            # A tracking server decides where artifacts live (its --artifacts-destination).
            exp_id = mlflow.create_experiment(experiment)
        elif found is None:
            artifact_root.mkdir(parents=True, exist_ok=True)
            exp_id = mlflow.create_experiment(experiment, artifact_location=artifact_root.as_uri())
        else:
            exp_id = found.experiment_id
        self.experiment_id = exp_id
        self.client = mlflow.MlflowClient(tracking_uri)

    # Writing -------------------------------------------------------------------------------
    def log_training(
        self, result: TrainResult, decision: GateDecision, *, plot: Path | None = None
    ) -> Registered:
        """Log a retrain run and register its model as a new version.

        The version gets the alias ``champion`` when ``decision.promote``, else
        ``challenger`` (the current champion keeps serving).
        """
        from mlflow.models import infer_signature

        mlflow = self._mlflow
        with (
            tempfile.TemporaryDirectory() as tmp,
            mlflow.start_run(experiment_id=self.experiment_id, run_name="retrain") as run,
        ):
            mlflow.log_params({k: str(v) for k, v in result.params.items()})
            mlflow.log_metrics({_metric_key(k): v for k, v in result.metrics.items()})
            mlflow.log_metric("train_seconds", result.seconds)
            champions_path = Path(tmp) / _CHAMPIONS
            result.champions.write_parquet(champions_path)
            errors_path = Path(tmp) / "backtest_errors.parquet"
            result.errors.write_parquet(errors_path)
            by_class = Path(tmp) / "champions_by_class.csv"
            result.champions.group_by("demand_class", "model").len().sort(
                "demand_class", "len", descending=[False, True]
            ).write_csv(by_class)
            for path in (champions_path, errors_path, by_class):
                mlflow.log_artifact(str(path))
            if plot is not None and plot.exists():
                mlflow.log_artifact(str(plot), artifact_path="plots")

            example = _example_history(result)
            signature = infer_signature(
                example.to_pandas(),
                params={
                    "horizon": 28,
                    "quantiles": "0.5,0.9,0.95",
                    "model_version": "x",
                    "freq": "daily",
                },
            )
            artifacts = {"champions": str(champions_path)}
            if result.fitted:  # costly models fitted at the retrain, applied with forward
                import pickle

                fitted_path = Path(tmp) / "fitted.pkl"
                fitted_path.write_bytes(pickle.dumps(result.fitted))
                artifacts["fitted"] = str(fitted_path)
            with _quiet():
                info = mlflow.pyfunc.log_model(
                    name="demand_model",
                    python_model=demand_model_class()(),
                    artifacts=artifacts,
                    signature=signature,
                    registered_model_name=self.model_name,
                    pip_requirements=["replen"],
                )
            version = str(info.registered_model_version)
            alias = "champion" if decision.promote else "challenger"
            self.client.set_registered_model_alias(self.model_name, alias, version)
            mlflow.set_tags(
                {
                    "replen.alias": alias,
                    "replen.model_version": version,
                    "replen.gate": decision.reason,
                }
            )
            if decision.champion_loss is not None:
                mlflow.log_metric("gate.champion_loss", decision.champion_loss)
            if decision.challenger_loss is not None:
                mlflow.log_metric("gate.challenger_loss", decision.challenger_loss)
        return Registered(
            run.info.run_id, version, alias, decision.challenger_loss, decision.champion_loss
        )

    # Reading -------------------------------------------------------------------------------
    def champion_version(self) -> str | None:
        try:
            mv = self.client.get_model_version_by_alias(self.model_name, "champion")
        except Exception:  # mlflow raises RestException when the alias or model is absent
            return None
        return str(mv.version)

    def load(self, alias: str = "champion") -> Any:
        """The pyfunc model under ``alias`` (``models:/<name>@<alias>``)."""
        return self._mlflow.pyfunc.load_model(f"models:/{self.model_name}@{alias}")

    def champions_table(self, alias: str = "champion") -> tuple[pl.DataFrame, str] | None:
        """The champion table and version behind ``alias``, or None if there is none."""
        try:
            mv = self.client.get_model_version_by_alias(self.model_name, alias)
        except Exception:
            return None
        local = self._mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=_CHAMPIONS
        )
        return pl.read_parquet(local), str(mv.version)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow prints registration banners and schema hints on stderr; keep output ours."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _metric_key(name: str) -> str:
    return name.replace(" ", "_")


def _example_history(result: TrainResult) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_id": ["S001"] * 3,
            "sku_id": ["SKU00001"] * 3,
            "date": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 3), eager=True),
            "units": [1.0, 0.0, 2.0],
            "stockout": [False, False, False],
        }
    )
