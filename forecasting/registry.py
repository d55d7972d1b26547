"""MLflow as the forecasting stage's memory: runs, the pyfunc model, champion/challenger aliases.

The only module that imports mlflow (lazily: it is slow to import).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
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
            self.booster = None
            if "booster" in context.artifacts:
                with open(context.artifacts["booster"], "rb") as handle:
                    self.booster = pickle.load(handle)

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
                booster=getattr(self, "booster", None),
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
    artifacts where it was told to.

    Everything goes through an ``MlflowClient`` bound to ``tracking_uri``: the process-wide
    fluent state of MLflow (``mlflow.set_tracking_uri``, the active run) is neither read nor
    changed, so two registries in one process never write into each other's store.
    """

    def __init__(
        self, tracking_uri: str, experiment: str, model_name: str, artifact_root: Path
    ) -> None:
        import mlflow

        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self._mlflow = mlflow
        self.client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None and tracking_uri.startswith(("http://", "https://")):
            # A tracking server decides where artifacts live (its --artifacts-destination).
            exp_id = self.client.create_experiment(experiment)
        elif found is None:
            artifact_root.mkdir(parents=True, exist_ok=True)
            exp_id = self.client.create_experiment(
                experiment, artifact_location=artifact_root.as_uri()
            )
        else:
            exp_id = found.experiment_id
        self.experiment_id = exp_id

    # Writing -------------------------------------------------------------------------------
    def log_training(
        self,
        result: TrainResult,
        decision: GateDecision,
        *,
        plot: Path | None = None,
        features: dict[str, str] | None = None,
    ) -> Registered:
        """Log a retrain run and register its model as a new version.

        The version gets the alias ``champion`` when ``decision.promote``, else
        ``challenger`` (the current champion keeps serving). ``features`` names where the
        training frame came from (the Feast feature service and its version), logged as
        ``features.*`` parameters.
        """
        client = self.client
        run_id = client.create_run(self.experiment_id, run_name="retrain").info.run_id
        try:
            with tempfile.TemporaryDirectory() as tmp:
                self._log_run(run_id, result, Path(tmp), plot, features or {})
                version = self._register(run_id, result, Path(tmp))
            alias = "champion" if decision.promote else "challenger"
            client.set_registered_model_alias(self.model_name, alias, version)
            tags = {"replen.alias": alias, "replen.model_version": version}
            for key, value in (tags | {"replen.gate": decision.reason}).items():
                client.set_tag(run_id, key, value)
            if decision.champion_loss is not None:
                client.log_metric(run_id, "gate.champion_loss", decision.champion_loss)
            if decision.challenger_loss is not None:
                client.log_metric(run_id, "gate.challenger_loss", decision.challenger_loss)
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
        return Registered(run_id, version, alias, decision.challenger_loss, decision.champion_loss)

    def _log_run(
        self,
        run_id: str,
        result: TrainResult,
        tmp: Path,
        plot: Path | None,
        features: dict[str, str],
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        metrics = {_metric_key(k): float(v) for k, v in result.metrics.items()}
        metrics["train_seconds"] = float(result.seconds)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in result.params.items()]
            + [Param(f"features.{k}", str(v)) for k, v in features.items()],
            tags=[RunTag(f"replen.features.{k}", str(v)) for k, v in features.items()],
        )
        result.champions.write_parquet(tmp / _CHAMPIONS)
        result.errors.write_parquet(tmp / "backtest_errors.parquet")
        result.champions.group_by("demand_class", "model").len().sort(
            "demand_class", "len", descending=[False, True]
        ).write_csv(tmp / "champions_by_class.csv")
        for name in (_CHAMPIONS, "backtest_errors.parquet", "champions_by_class.csv"):
            self.client.log_artifact(run_id, str(tmp / name))
        for name, frame in (
            ("data_checks.csv", result.checks),
            ("selection.csv", result.selection),
            ("window_scores.csv", result.window_scores),
            ("coverage.csv", result.coverage),
        ):
            if frame.width:  # what the data checks masked, how selection decided
                frame.write_csv(tmp / name)
                self.client.log_artifact(run_id, str(tmp / name), artifact_path="report")
        if plot is not None and plot.exists():
            self.client.log_artifact(run_id, str(plot), artifact_path="plots")

    def _register(self, run_id: str, result: TrainResult, tmp: Path) -> str:
        """Save the pyfunc model, log it as the run's model and register a new version."""
        from mlflow.exceptions import MlflowException

        signature = _signature()
        artifacts = {"champions": str(tmp / _CHAMPIONS)}
        if result.booster is not None:  # the global model, fitted at the retrain
            import pickle

            (tmp / "booster.pkl").write_bytes(pickle.dumps(result.booster))
            artifacts["booster"] = str(tmp / "booster.pkl")
        if result.fitted:  # costly models fitted at the retrain, applied with forward
            import pickle

            (tmp / "fitted.pkl").write_bytes(pickle.dumps(result.fitted))
            artifacts["fitted"] = str(tmp / "fitted.pkl")
        local = tmp / "demand_model"
        with _quiet():
            self._mlflow.pyfunc.save_model(
                path=str(local),
                python_model=demand_model_class()(),
                artifacts=artifacts,
                signature=signature,
                pip_requirements=["replen"],
            )
        model = self.client.create_logged_model(
            self.experiment_id, name="demand_model", source_run_id=run_id
        )
        self.client.log_model_artifacts(model.model_id, str(local))
        self.client.finalize_logged_model(model.model_id, "READY")
        try:
            self.client.create_registered_model(self.model_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        with _quiet():
            version = self.client.create_model_version(
                self.model_name,
                source=model.artifact_location,
                run_id=run_id,
                model_id=model.model_id,
            )
        return str(version.version)

    # Reading -------------------------------------------------------------------------------
    def champion_version(self) -> str | None:
        try:
            mv = self.client.get_model_version_by_alias(self.model_name, "champion")
        except Exception:  # mlflow raises RestException when the alias or model is absent
            return None
        return str(mv.version)

    def load(self, alias: str = "champion") -> Any:
        """The pyfunc model under ``alias`` (``models:/<name>@<alias>``), read through this
        registry's client."""
        mv = self.client.get_model_version_by_alias(self.model_name, alias)
        local = self._mlflow.artifacts.download_artifacts(
            artifact_uri=mv.source, tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
        )
        return self._mlflow.pyfunc.load_model(local)

    def champions_table(self, alias: str = "champion") -> tuple[pl.DataFrame, str] | None:
        """The champion table and version behind ``alias``, or None if there is none."""
        try:
            mv = self.client.get_model_version_by_alias(self.model_name, alias)
        except Exception:
            return None
        local = self._mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=_CHAMPIONS, tracking_uri=self.tracking_uri
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


def _signature() -> Any:
    """Input: daily sales (units null on the planned days ahead) with the optional
    covariates of the global models; predict-time params: horizon, quantiles, version."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    from forecasting.covariates import CATEGORICAL, NUMERIC

    inputs = Schema(
        [
            ColSpec("string", "store_id"),
            ColSpec("string", "sku_id"),
            ColSpec("datetime", "date"),
            ColSpec("double", "units", required=False),
            ColSpec("boolean", "stockout", required=False),
            ColSpec("double", "price", required=False),
            *[ColSpec("double", c, required=False) for c in NUMERIC],
            *[ColSpec("string", c, required=False) for c in CATEGORICAL],
        ]
    )
    params = ParamSchema(
        [
            ParamSpec("horizon", "long", 28),
            ParamSpec("quantiles", "string", "0.5,0.9,0.95"),
            ParamSpec("model_version", "string", "x"),
            ParamSpec("freq", "string", "daily"),
        ]
    )
    return ModelSignature(inputs=inputs, params=params)
