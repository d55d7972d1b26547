"""Wiring of stage components from one Settings object (lazy: each built on first use)."""

from __future__ import annotations

import os
from functools import cached_property

import polars as pl
from sqlalchemy.engine import Engine

from features.lake import Lake
from features.reference import ReferenceStore
from features.sales import daily_sales
from features.store import FeatureStoreClient
from jobs.ledger import AlertStore, RunLedger
from kernel.errors import NotReady
from replen.settings import Settings
from replenishment.erp.outbox import Outbox
from replenishment.orders import OrderStore
from replenishment.positions import PositionStore
from replenishment.review_store import ReviewStore
from replenishment.rules import Rules
from replenishment.rules_store import RulesStore

__all__ = ["MasterDataMissing", "NoSales", "Runtime", "ensure_schema"]


def ensure_schema(url: str) -> Engine:
    """The process's engine for ``url``, migrated to the newest schema once per process."""
    from replen.db import connect

    return connect(url)


class MasterDataMissing(NotReady):
    """Replenishment rules (suppliers and items) have not been loaded yet."""


class NoSales(NotReady):
    """The POS lake holds no sales yet."""

    def __init__(self, message: str = "the POS lake holds no sales yet") -> None:
        super().__init__(message, hint="ingest POS lines first (`replen ingest pos FILE`)")


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
    def reference(self) -> ReferenceStore:
        """Calendar, price list, promotions and item attributes loaded by `replen ingest`."""
        return ReferenceStore(self.settings.reference_dir)

    @cached_property
    def engine(self) -> Engine:
        """The database, migrated to the newest schema (once per process and URL)."""
        return ensure_schema(self.settings.db_url)

    @cached_property
    def orders(self) -> OrderStore:
        return OrderStore(self.engine)

    @cached_property
    def review(self) -> ReviewStore:
        """Held POs, exception marks and the worklist's reads (the PO store's engine)."""
        return ReviewStore(self.orders.engine)

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
        """Daily sales of every store×SKU, from the lake (the truth); :class:`NoSales` if the
        lake holds none yet."""
        sales = daily_sales(self.lake.scan_events(), self.lake.scan_inventory())
        if sales.is_empty():
            raise NoSales()
        return sales

    @cached_property
    def rules_store(self) -> RulesStore:
        return RulesStore(self.engine)

    @cached_property
    def ledger(self) -> RunLedger:
        return RunLedger(self.engine)

    @cached_property
    def alerts(self) -> AlertStore:
        return AlertStore(self.engine)

    def rules(self) -> Rules:
        """The rules loaded into the database (`replen rules load`)."""
        rules = self.rules_store.load()
        if rules is None:
            raise MasterDataMissing(
                "no replenishment rules loaded; load suppliers and items with "
                "`replen rules load rules.yaml` (see `replen rules --help`)"
            )
        return rules

    @cached_property
    def outbox(self) -> Outbox:
        """Deliveries of approved PO versions to the ERP."""
        return Outbox(self.engine)

    @cached_property
    def positions(self) -> PositionStore:
        """Stock positions, item and store names, rejected feed rows."""
        return PositionStore(self.engine)
