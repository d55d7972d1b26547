"""Feast definitions for Replen: entities, velocity, the models' daily inputs, services.

Feast imports every .py in this folder on `feast apply`; keep only declarations here.
Relative paths resolve against the Feast repo path (``<data_dir>/feast``), where
features/store.py writes the offline tables that training reads point-in-time and that
``materialize`` loads into the online store.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, Project, PushSource
from feast.types import Array, Float64, Int64, String
from feast.value_type import ValueType

# Bump when the objects below change: stores applied with an older version re-apply.
DEFINITIONS_VERSION = "2"

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
day = Entity(
    name="day",
    join_keys=["date"],
    value_type=ValueType.STRING,
    description="A calendar day, ISO 8601 (2026-12-24).",
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

DAILY_OFFLINE_PATH = "offline/daily_sales.parquet"
CALENDAR_OFFLINE_PATH = "offline/store_calendar.parquet"
ATTRIBUTES_OFFLINE_PATH = "offline/item_attributes.parquet"
PROMO_PLAN_OFFLINE_PATH = "offline/promo_plan.parquet"

daily_sales_source = FileSource(
    name="daily_sales_source",
    path=DAILY_OFFLINE_PATH,
    timestamp_field="event_timestamp",
    description="Daily sales with price and promotion, from the lake and price list.",
)

daily_sales = FeatureView(
    name="daily_sales",
    entities=[store, sku],
    ttl=timedelta(days=1),  # a day's row describes that day only: no carrying forward
    schema=[
        Field(name="units", dtype=Float64, description="Units sold that day."),
        Field(name="stockout", dtype=Int64, description="1 when on hand was zero (censored)."),
        Field(name="price", dtype=Float64, description="Shelf price (list, else realised)."),
        Field(name="price_rel", dtype=Float64, description="Price over its 364-day mean."),
        Field(name="promo", dtype=Float64, description="Promotion share of the day's units."),
    ],
    online=True,
    source=daily_sales_source,
    tags={"stage": "features", "owner": "replen"},
)

store_calendar_source = FileSource(
    name="store_calendar_source",
    path=CALENDAR_OFFLINE_PATH,
    timestamp_field="event_timestamp",
    description="Each store's calendar day by day, from `replen ingest calendar`.",
)

store_calendar = FeatureView(
    name="store_calendar",
    entities=[store, day],
    ttl=timedelta(days=1),
    schema=[
        Field(name="event", dtype=Float64, description="1 on a holiday or event day."),
        Field(name="event_type", dtype=String, description="Kind of the day's event."),
        Field(name="payday", dtype=Float64, description="1 on a payday / SNAP-like day."),
    ],
    online=True,
    source=store_calendar_source,
    tags={"stage": "features", "owner": "replen"},
)

item_attributes_source = FileSource(
    name="item_attributes_source",
    path=ATTRIBUTES_OFFLINE_PATH,
    timestamp_field="event_timestamp",
    description="Department and category per SKU, from `replen ingest attributes`.",
)

item_attributes = FeatureView(
    name="item_attributes",
    entities=[sku],
    ttl=timedelta(0),  # attributes do not expire
    schema=[
        Field(name="department", dtype=String, description="The item's department."),
        Field(name="category", dtype=String, description="The item's category."),
    ],
    online=True,
    source=item_attributes_source,
    tags={"stage": "features", "owner": "replen"},
)

promo_plan_source = FileSource(
    name="promo_plan_source",
    path=PROMO_PLAN_OFFLINE_PATH,
    timestamp_field="event_timestamp",
    description="Planned promotions per store×SKU, from `replen ingest promotions`.",
)

promo_plan = FeatureView(
    name="promo_plan",
    entities=[store, sku],
    ttl=timedelta(days=3650),
    schema=[
        Field(
            name="promo_dates",
            dtype=Array(String),
            description="Planned promotion days from today on (ISO dates).",
        ),
    ],
    online=True,
    source=promo_plan_source,
    tags={"stage": "features", "owner": "replen"},
)

FORECASTING_SERVICE = "forecasting_v2"
FORECASTING_SERVICE_VERSION = "2"

forecasting_v2 = FeatureService(
    name=FORECASTING_SERVICE,
    features=[daily_sales, store_calendar, item_attributes],
    description="Training frames of the forecasting stage: daily sales, calendar, item.",
    tags={"consumer": "forecasting", "version": FORECASTING_SERVICE_VERSION, "use": "training"},
)

forecasting_state_v1 = FeatureService(
    name="forecasting_state_v1",
    features=[
        daily_sales[["price", "price_rel", "promo"]],
        item_attributes,
        promo_plan,
        sku_velocity,
    ],
    description="What the daily forecast reads online per store×SKU: price, item, plans.",
    tags={"consumer": "forecasting", "version": "1", "use": "online"},
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
    day,
    sku_velocity_source,
    sku_velocity_push,
    sku_velocity,
    daily_sales_source,
    daily_sales,
    store_calendar_source,
    store_calendar,
    item_attributes_source,
    item_attributes,
    promo_plan_source,
    promo_plan,
    forecasting_v1,
    forecasting_v2,
    forecasting_state_v1,
    replenishment_v1,
]
