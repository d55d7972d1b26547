"""Feast for real: apply, materialize from the offline table, push, read online."""

from datetime import timedelta

import polars as pl
import pytest

from features.sales import velocity, velocity_history
from features.store import FeatureStoreClient

pytestmark = pytest.mark.slow


def test_rebuild_then_push_keeps_online_velocity_equal_to_the_lake(tmp_path, daily) -> None:
    client = FeatureStoreClient(tmp_path / "feast")
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


def test_feature_services_are_registered(tmp_path) -> None:
    client = FeatureStoreClient(tmp_path / "feast")
    client.apply()
    names = {s.name for s in client.store.list_feature_services()}
    assert names == {"forecasting_v1", "replenishment_v1"}
    view = client.store.get_feature_view("sku_velocity")
    assert sorted(e for e in view.entities) == ["sku", "store"]
