"""Feast definitions for Replen: store and SKU entities, sales velocity, feature services.

Feast imports every .py in this folder on `feast apply`; keep only declarations here.
Relative paths resolve against the Feast repo path (``<data_dir>/feast``), where
features/store.py writes the offline velocity table that ``materialize`` reads.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, Project, PushSource
from feast.types import Float64, Int64
from feast.value_type import ValueType

project = Project(name="replen", description="Store×SKU sales velocity for Replen")

store = Entity(
    name="store",
    join_keys=["store_id"],
    value_type=ValueType.STRING,
    description="A selling location (shop, warehouse, web store).",
)
sku = Entity(
    name="sku",
    join_keys=["sku_id"],
    value_type=ValueType.STRING,
    description="A stock-keeping unit.",
)

VELOCITY_OFFLINE_PATH = "offline/sku_velocity.parquet"

sku_velocity_source = FileSource(
    name="sku_velocity_source",
    path=VELOCITY_OFFLINE_PATH,
    timestamp_field="event_timestamp",
    description="Velocity per store×SKU and day, recomputed from the POS lake.",
)

sku_velocity_push = PushSource(
    name="sku_velocity_push",
    batch_source=sku_velocity_source,
    description="Fresh velocity pushed after every POS ingest batch.",
)

sku_velocity = FeatureView(
    name="sku_velocity",
    entities=[store, sku],
    ttl=timedelta(days=3650),
    schema=[
        Field(name="units_1d", dtype=Float64, description="Units sold on the as-of day."),
        Field(name="units_7d", dtype=Float64, description="Units sold over the last 7 days."),
        Field(name="units_28d", dtype=Float64, description="Units sold over the last 28 days."),
        Field(
            name="days_since_last_sale",
            dtype=Int64,
            description="Whole days since the last day with positive sales.",
        ),
    ],
    online=True,
    source=sku_velocity_push,
    tags={"stage": "features", "owner": "replen"},
)

forecasting_v1 = FeatureService(
    name="forecasting_v1",
    features=[sku_velocity],
    description="Velocity features read by the forecasting stage.",
    tags={"consumer": "forecasting"},
)

replenishment_v1 = FeatureService(
    name="replenishment_v1",
    features=[sku_velocity[["units_7d", "units_28d", "days_since_last_sale"]]],
    description="Velocity shown to planners beside each suggested PO line.",
    tags={"consumer": "replenishment"},
)

OBJECTS = [
    project,
    store,
    sku,
    sku_velocity_source,
    sku_velocity_push,
    sku_velocity,
    forecasting_v1,
    replenishment_v1,
]
