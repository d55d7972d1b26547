"""Rules in the database: replaced as a whole in one transaction (never half-loaded)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from replenishment.rules import Rules

__all__ = ["RulesStore"]

_meta = MetaData()
_suppliers = Table(
    "rules_suppliers",
    _meta,
    Column("supplier_id", String(64), primary_key=True),
    Column("lead_time_mean", Float, nullable=False),
    Column("lead_time_std", Float, nullable=False),
    Column("order_days", String(64), nullable=False),
    Column("review_period_days", Float, nullable=False),
    Column("min_order_value", Float, nullable=False),
    Column("min_order_action", String(8), nullable=False),
    Column("max_order_value", Float),
    Column("currency", String(3), nullable=False),
    Column("name", String(256)),
)
_items = Table(
    "rules_items",
    _meta,
    Column("sku_id", String(64), primary_key=True),
    Column("supplier_id", String(64), nullable=False),
    Column("unit_cost", Float, nullable=False),
    Column("pack_size", Integer, nullable=False),
    Column("moq_units", Integer, nullable=False),
    Column("shelf_life_days", Float),
    Column("round_up_fraction", Float, nullable=False),
)
_overrides = Table(
    "rules_overrides",
    _meta,
    Column("store_id", String(64), primary_key=True),
    Column("sku_id", String(64), primary_key=True),
    Column("service_level", Float),
    Column("max_capacity", Float),
    Column("min_presentation", Float),
)
_loads = Table(
    "rules_loads",
    _meta,
    Column("id", Integer, primary_key=True),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    Column("source", String(1024), nullable=False),
    Column("suppliers", Integer),
    Column("items", Integer),
    Column("overrides", Integer),
)
_TABLES = {"suppliers": _suppliers, "items": _items, "overrides": _overrides}


class RulesStore:
    """The loaded rules in the database; its tables come from the migrations."""

    def __init__(self, engine: Engine | str) -> None:
        self.engine = create_engine(engine) if isinstance(engine, str) else engine

    def save(self, rules: Rules, source: str) -> dict[str, int]:
        """Replace all rules atomically; returns row counts."""
        counts = rules.summary()
        with self.engine.begin() as conn:
            for name, table in _TABLES.items():
                conn.execute(delete(table))
                frame: pl.DataFrame = getattr(rules, name)
                if frame.height:
                    conn.execute(insert(table), frame.to_dicts())
            conn.execute(
                insert(_loads).values(loaded_at=datetime.now(UTC), source=source, **counts)
            )
        return counts

    def update_lead_times(self, lead_times: dict[str, tuple[float, float]], source: str) -> None:
        """Set suppliers' lead time mean and standard deviation (days), in one transaction,
        recorded as a load from ``source``."""
        with self.engine.begin() as conn:
            for supplier_id, (mean, std) in lead_times.items():
                conn.execute(
                    update(_suppliers)
                    .where(_suppliers.c.supplier_id == supplier_id)
                    .values(lead_time_mean=mean, lead_time_std=std)
                )
            conn.execute(
                insert(_loads).values(
                    loaded_at=datetime.now(UTC),
                    source=source[:1024],
                    suppliers=len(lead_times),
                    items=0,
                    overrides=0,
                )
            )

    def load(self) -> Rules | None:
        """The stored rules, or None if none were ever loaded."""
        with self.engine.connect() as conn:
            frames = {
                name: pl.DataFrame(
                    [dict(r._mapping) for r in conn.execute(select(table))],
                    schema={c.name: _dtype(c.type) for c in table.columns},
                )
                for name, table in _TABLES.items()
            }
        if frames["suppliers"].is_empty():
            return None
        return Rules.from_frames(frames["suppliers"], frames["items"], frames["overrides"])

    def last_load(self) -> dict[str, object] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_loads).order_by(_loads.c.id.desc()).limit(1)).first()
        return dict(row._mapping) if row else None


def _dtype(sqltype: object) -> pl.DataType:
    if isinstance(sqltype, Float):
        return pl.Float64()
    if isinstance(sqltype, Integer):
        return pl.Int64()
    return pl.String()
