"""The demo: a synthetic chain through every stage, on embedded defaults (no servers)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from jobs.model_inputs import ingest_reference
from jobs.refresh import ingest_inventory, ingest_pos, refresh_features
from jobs.replenish import forecast_and_plan
from jobs.retrain import retrain
from jobs.runtime import Runtime
from kernel.errors import Conflict
from kernel.files import write_bytes
from replen.settings import Settings
from replen.synthetic import REFERENCE_FILES, generate
from replenishment.rules import Rules

__all__ = ["STAGES", "DemoMismatch", "DemoSummary", "run_demo"]

STAGES = (
    "generate chain",
    "ingest POS and reference files",
    "daily sales, prices, calendar → Feast",
    "train from Feast & register (MLflow)",
    "forecast & plan POs",
)


class DemoMismatch(Conflict):
    """The data directory holds a demo made with other parameters."""


@dataclass
class DemoSummary:
    params: dict[str, Any]
    ingest: dict[str, Any]
    features: dict[str, Any]
    training: dict[str, Any]
    plan: dict[str, Any]
    paths: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "ingest": self.ingest,
            "features": self.features,
            "training": self.training,
            "plan": self.plan,
            "paths": self.paths,
        }


def run_demo(
    settings: Settings,
    *,
    stores: int = 5,
    skus: int = 40,
    days: int = 730,
    seed: int = 7,
    reset: bool = False,
    on_stage: Callable[[int, str], None] | None = None,
) -> DemoSummary:
    """Generate a chain and run every stage on it; returns what each stage produced.

    Re-running with the same parameters is idempotent (resent POS lines count as
    duplicates, the day's suggestions are replaced). Other parameters need ``reset``,
    which empties the data directory first (MLflow history is kept).
    """
    params = {"stores": stores, "skus": skus, "days": days, "seed": seed}
    _prepare(settings, params, reset)
    rt = Runtime(settings)
    write_bytes(json.dumps(params).encode(), settings.data_dir / "demo.json")

    def stage(i: int) -> None:
        if on_stage is not None:
            on_stage(i, STAGES[i])

    stage(0)
    chain = generate(stores=stores, skus=skus, days=days, seed=seed)
    rt.save_master(stock=chain.stock, items=chain.items)
    rt.rules_store.save(Rules.from_frames(chain.suppliers, chain.items), "replen demo")

    stage(1)
    report = ingest_pos(rt, chain.pos, push=False, chunk_rows=max(chain.pos.height, 1))
    snapshots = ingest_inventory(rt, chain.inventory)
    reference = {
        kind: ingest_reference(
            rt, kind, getattr(chain, kind).select(pl.all().cast(pl.String)), f"demo {kind}"
        ).to_dict()
        for kind in REFERENCE_FILES
    }

    stage(2)
    history = rt.history()
    feats = refresh_features(rt, history)

    stage(3)
    trained = retrain(rt)  # the training frame comes from Feast

    stage(4)
    plan = forecast_and_plan(rt, history=history)

    return DemoSummary(
        params=params,
        ingest={**report.to_dict(), "inventory_snapshots": snapshots, "reference": reference},
        features=feats.to_dict(),
        training=trained.to_dict(),
        plan=plan.to_dict(),
        paths={
            "data_dir": str(settings.data_dir.resolve()),
            "csv": plan.csv_path,
            "forecast": plan.forecast_path,
            "database": settings.db_url,
            "mlflow": settings.tracking_uri,
            "backtest_plot": str((settings.out_dir / "backtest.png").resolve()),
        },
    )


def _prepare(settings: Settings, params: dict[str, Any], reset: bool) -> None:
    marker = settings.data_dir / "demo.json"
    if reset and settings.data_dir.exists():
        if any(settings.data_dir.iterdir()) and not marker.exists():
            raise DemoMismatch(
                f"{settings.data_dir} holds data that no demo made; refusing to delete it. "
                "Point REPLEN_DATA_DIR at an empty or demo directory."
            )
        shutil.rmtree(settings.data_dir)
        return
    if marker.exists():
        before = json.loads(marker.read_text())
        if before != params:
            raise DemoMismatch(
                f"{settings.data_dir} holds a demo made with {before}; run with --reset to "
                f"start over with {params}, or use another REPLEN_DATA_DIR"
            )
    elif settings.lake_dir.exists() and any(settings.lake_dir.glob("_manifests/*.json")):
        raise DemoMismatch(
            f"{settings.data_dir} already holds real POS data; run the demo in another "
            "directory (REPLEN_DATA_DIR=.replen-demo replen demo)"
        )
