"""Wiring of stage components from one Settings object (lazy: each built on first use)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import polars as pl

from features.lake import Lake
from features.sales import daily_sales
from features.store import FeatureStoreClient
from kernel.errors import NotReady
from replen.settings import Settings
from replenishment.orders import OrderStore
from replenishment.rules import Rules
from replenishment.rules_store import RulesStore

__all__ = ["MasterDataMissing", "Runtime", "ensure_schema"]


_MIGRATED: dict[str, str] = {}


def ensure_schema(url: str) -> str:
    """Run the Alembic migrations on ``url`` once per process; returns the revision."""
    if url not in _MIGRATED:
        from replen.db import upgrade

        _MIGRATED[url] = upgrade(url)
    return _MIGRATED[url]


class MasterDataMissing(NotReady):
    """Suppliers, items or stock positions have not been loaded yet."""


class Runtime:
    """The components of one Replen installation, built from ``settings`` on demand."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.ensure_dirs()
        # Quiet third-party progress bars and banners in jobs and the CLI.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.settings.lake_dir)

    @cached_property
    def features(self) -> FeatureStoreClient:
        s = self.settings
        return FeatureStoreClient(s.feast_dir, s.online_store, s.feast_registry)

    @cached_property
    def schema(self) -> str:
        """The database brought to the newest migration (once per process and URL)."""
        return ensure_schema(self.settings.db_url)

    @cached_property
    def orders(self) -> OrderStore:
        self.schema  # noqa: B018  (migrate before use)
        return OrderStore(self.settings.db_url)

    @cached_property
    def registry(self):  # type: ignore[no-untyped-def]  # mlflow is imported lazily
        from forecasting.registry import Registry

        s = self.settings
        return Registry(s.tracking_uri, s.experiment_name, s.model_name, s.artifact_root)

    def registry_for(self, freq: str = "daily"):  # type: ignore[no-untyped-def]
        """The registry of the model for ``freq``: daily is ``<model_name>``, others get a
        suffix (``replen-demand-weekly``) so that they never replace the daily champion."""
        if freq == "daily":
            return self.registry
        from forecasting.registry import Registry

        s = self.settings
        return Registry(
            s.tracking_uri, s.experiment_name, f"{s.model_name}-{freq}", s.artifact_root
        )

    # Data ----------------------------------------------------------------------------------
    def history(self) -> pl.DataFrame:
        """Daily sales of every store×SKU, from the lake (the truth)."""
        return daily_sales(self.lake.scan_events(), self.lake.scan_inventory())

    def master_path(self, name: str) -> Path:
        return self.settings.master_dir / f"{name}.parquet"

    def save_master(self, **frames: pl.DataFrame) -> None:
        for name, frame in frames.items():
            path = self.master_path(name)
            tmp = path.with_suffix(".tmp")
            frame.write_parquet(tmp)
            tmp.replace(path)

    def load_master(self, name: str) -> pl.DataFrame:
        path = self.master_path(name)
        if not path.exists():
            raise MasterDataMissing(
                f"no {name} master data at {path}; run `replen demo` or load your own with "
                f"`replen generate --out DIR` as a template"
            )
        return pl.read_parquet(path)

    @cached_property
    def rules_store(self) -> RulesStore:
        self.schema  # noqa: B018  (migrate before use)
        return RulesStore(self.settings.db_url)

    def rules(self) -> Rules:
        """The rules loaded into the database (`replen rules load`)."""
        rules = self.rules_store.load()
        if rules is None:
            raise MasterDataMissing(
                "no replenishment rules loaded; load suppliers and items with "
                "`replen rules load rules.yaml` (see `replen rules --help`)"
            )
        return rules

    def stock(self) -> pl.DataFrame:
        return self.load_master("stock")
