"""Feast for real: apply, materialize from the offline table, push, read online — on the
default SQLite online store and on Redis (the scale-out store, chosen by configuration)."""

from datetime import timedelta

import polars as pl
import pytest

from features.sales import velocity, velocity_history
from features.store import FeatureStoreClient, online_store_config

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "redis"])
def online_store(request) -> str:
    if request.param == "sqlite":
        return "sqlite"
    return str(request.getfixturevalue("redis_url"))


def test_rebuild_then_push_keeps_online_velocity_equal_to_the_lake(
    tmp_path, daily, online_store
) -> None:
    client = FeatureStoreClient(tmp_path / "feast", online_store)
    hist = velocity_history(daily)
    assert client.rebuild(hist) == hist.height
    keys = daily.select("store_id", "sku_id").unique().sort("store_id", "sku_id")
    online = client.online_velocity(keys).sort("store_id", "sku_id")
    expected = velocity(daily).sort("store_id", "sku_id")
    for col in ("units_1d", "units_7d", "units_28d", "days_since_last_sale"):
        assert online[col].to_list() == expected[col].to_list(), col

    # A later day pushed online wins over the materialized one.
    later = expected.with_columns(
        pl.col("as_of") + timedelta(days=1), (pl.col("units_7d") + 100).alias("units_7d")
    )
    assert client.push_online(later) == later.height
    fresh = client.online_velocity(keys, service="replenishment_v1").sort("store_id", "sku_id")
    assert fresh["units_7d"].to_list() == later["units_7d"].to_list()
    assert "units_1d" not in fresh.columns  # the replenishment service is a subset


def test_a_second_push_on_the_same_day_replaces_the_first(tmp_path, daily, online_store) -> None:
    # Velocity as of one day is pushed after every batch of that day, always with the same
    # event time; Redis' default dedup by event time would keep the first, stale value.
    client = FeatureStoreClient(tmp_path / "feast", online_store)
    client.apply()
    first = velocity(daily)
    keys = first.select("store_id", "sku_id")
    client.push_online(first)
    second = first.with_columns(pl.col("units_1d") + 1, pl.col("units_7d") + 1)
    client.push_online(second)
    online = client.online_velocity(keys).sort("store_id", "sku_id")
    expected = second.sort("store_id", "sku_id")
    assert online["units_1d"].to_list() == expected["units_1d"].to_list()


def test_rebuild_on_redis_drops_rows_the_lake_does_not_justify(tmp_path, daily, redis_url) -> None:
    client = FeatureStoreClient(tmp_path / "feast", redis_url)
    client.apply()
    vel = velocity(daily)
    client.push_online(vel.with_columns(pl.lit(999.0).alias("units_28d")))
    client.rebuild(velocity_history(daily))
    online = client.online_velocity(vel.select("store_id", "sku_id"))
    assert 999.0 not in online["units_28d"].to_list()


def test_feature_services_are_registered(tmp_path) -> None:
    client = FeatureStoreClient(tmp_path / "feast")
    client.apply()
    names = {s.name for s in client.store.list_feature_services()}
    assert names == {"forecasting_v1", "replenishment_v1"}
    view = client.store.get_feature_view("sku_velocity")
    assert sorted(e for e in view.entities) == ["sku", "store"]


@pytest.mark.parametrize(
    ("url", "connection"),
    [
        ("redis://127.0.0.1:6390/2", "127.0.0.1:6390,db=2"),
        ("redis://:s%40cret@cache:6379", "cache:6379,password=s@cret"),
        ("rediss://cache.example.com/0", "cache.example.com:6379,db=0,ssl=true"),
    ],
)
def test_redis_urls_become_feast_connection_strings(tmp_path, url, connection) -> None:
    config = online_store_config(tmp_path, url)
    assert config == {"type": "redis", "connection_string": connection, "skip_dedup": True}
