"""Feast for real: apply, materialize from the offline table, push, read online — on the
default SQLite online store and on Redis (the scale-out store, chosen by configuration)."""

from datetime import date, timedelta

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


def _with_nulls(vel: pl.DataFrame) -> pl.DataFrame:
    """Velocity with a returns-only key (no last sale) and a missing float, as NaN too."""
    n = pl.int_range(pl.len())
    return vel.with_columns(
        pl.when(n == 0)
        .then(None)
        .otherwise(pl.col("days_since_last_sale"))
        .alias("days_since_last_sale"),
        pl.when(n == 1).then(None).otherwise(pl.col("units_1d")).alias("units_1d"),
        pl.when(n == 2).then(float("nan")).otherwise(pl.col("units_7d")).alias("units_7d"),
    )


def test_push_rows_are_the_protos_feast_itself_builds(tmp_path, daily) -> None:
    from feast.infra.passthrough_provider import PassthroughProvider

    from features.store import _to_feast_frame, online_rows

    client = FeatureStoreClient(tmp_path / "feast")
    client.apply()
    (view,) = client._push_views() or []
    vel = _with_nulls(velocity(daily))
    ours = online_rows(vel, view)
    feasts = PassthroughProvider._prep_rows_to_write_for_ingestion(view, _to_feast_frame(vel))
    assert len(ours) == len(feasts) == vel.height
    for (key, values, at, created), (key2, values2, at2, created2) in zip(
        ours, feasts, strict=True
    ):
        assert key.SerializeToString() == key2.SerializeToString()
        assert list(values) == list(values2)
        assert {k: v.SerializeToString() for k, v in values.items()} == {
            k: v.SerializeToString() for k, v in values2.items()
        }
        assert at == at2 and created is created2 is None


def test_push_online_reads_back_as_feasts_own_push(tmp_path, daily, online_store) -> None:
    from feast.data_source import PushMode

    from features.store import _PUSH, _to_feast_frame

    vel = _with_nulls(velocity(daily))
    keys = vel.select("store_id", "sku_id").sort("store_id", "sku_id")
    ours = FeatureStoreClient(tmp_path / "ours", online_store)
    ours.apply()
    assert ours.push_online(vel) == vel.height
    got = ours.online_velocity(keys)
    if online_store != "sqlite":  # one Redis database: the same keys, pushed again by Feast
        import redis

        redis.Redis.from_url(online_store).flushdb()
    feasts = FeatureStoreClient(tmp_path / "feasts", online_store)
    feasts.apply()
    feasts.store.push(_PUSH, _to_feast_frame(vel), to=PushMode.ONLINE)
    want = feasts.online_velocity(keys)
    assert got.equals(want)
    assert got["days_since_last_sale"].null_count() >= 1 and got["units_7d"].null_count() >= 1


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
    assert names == {
        "forecasting_v1",
        "forecasting_v2",
        "forecasting_state_v1",
        "replenishment_v1",
    }
    view = client.store.get_feature_view("sku_velocity")
    assert sorted(e for e in view.entities) == ["sku", "store"]


def test_training_frames_never_see_a_value_from_after_the_row_day(tmp_path) -> None:
    """Point in time: each row gets its own day's features, a day without a feature row gets
    nothing (not yesterday's, not tomorrow's), and calendar days are matched by date."""
    client = FeatureStoreClient(tmp_path / "feast")
    client.apply()
    d0 = date(2026, 1, 5)
    days = [d0 + timedelta(days=i) for i in range(10)]
    written = pl.DataFrame(
        {
            "store_id": "S1",
            "sku_id": "A",
            "date": days,
            "units": [float(i) for i in range(10)],  # each day's value names its day
            "stockout": [i == 4 for i in range(10)],
            "price": [2.0] * 6 + [3.0] * 4,  # the price rises on day 6
            "price_rel": 1.0,
            "promo": 0.0,
        }
    ).filter(pl.col("date") != d0 + timedelta(days=7))  # day 7 never arrived
    calendar = pl.DataFrame(
        {
            "store_id": ["S1", "S1"],
            "date": [d0 + timedelta(days=3), d0 + timedelta(days=30)],
            "event": [1.0, 1.0],
            "event_type": ["Sporting", "National"],
            "payday": [0.0, 1.0],
        }
    )
    attributes = pl.DataFrame({"sku_id": ["A"], "department": ["D1"], "category": ["FOOD"]})
    client.write_inputs(daily=written, calendar=calendar, attributes=attributes)
    rows = pl.DataFrame({"store_id": "S1", "sku_id": "A", "date": days})
    frame = client.training_frame(rows).sort("date")
    expected = [float(i) if i != 7 else None for i in range(10)]
    assert frame["units"].to_list() == expected
    assert frame["price"].to_list()[:6] == [2.0] * 6  # no later price leaks backwards
    assert frame["stockout"].to_list()[4] is True
    assert frame["event_type"].to_list() == [None] * 3 + ["Sporting"] + [None] * 6
    assert set(frame["department"]) == {"D1"}

    # Online: the newest day's state, the planned calendar ahead.
    plan = pl.DataFrame({"store_id": ["S1"], "sku_id": ["A"], "promo_dates": [["2026-01-20"]]})
    client.write_inputs(promo_plan=plan, as_of=days[-1])
    client.materialize_inputs(days[-1], until=d0 + timedelta(days=40))
    state = client.online_state(rows.select("store_id", "sku_id").unique())
    row = state.row(0, named=True)
    assert (row["price"], row["department"], row["promo_dates"]) == (3.0, "D1", ["2026-01-20"])
    ahead = client.online_calendar(["S1"], [d0 + timedelta(days=30), d0 + timedelta(days=31)])
    assert ahead["event_type"].to_list() == ["National", None]


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
