"""The velocity pusher follows the lake: every writer's batches, each folded once, exact."""

from __future__ import annotations

import threading

import polars as pl
import pytest

from features.events import validate_events
from features.sales import velocity
from jobs.runtime import Runtime
from jobs.velocity import VelocitySync, read_stats, run_pusher, wait_pushed

pytestmark = pytest.mark.slow

COLUMNS = ("units_1d", "units_7d", "units_28d", "days_since_last_sale")


def _assert_online_equals_lake(rt: Runtime) -> None:
    expected = velocity(rt.history()).sort("store_id", "sku_id")
    online = rt.features.online_velocity(expected.select("store_id", "sku_id"))
    online = online.sort("store_id", "sku_id")
    for col in COLUMNS:
        assert online[col].to_list() == expected[col].to_list(), col


def test_batches_of_every_writer_are_pushed_once_and_exactly(settings, chain) -> None:
    pos = chain.pos.sample(fraction=1.0, shuffle=True, seed=5)
    api, consumer, pusher = Runtime(settings), Runtime(settings), Runtime(settings)
    api.lake.append_events(validate_events(pos.head(2000)))
    consumer.lake.append_events(validate_events(pos.slice(2000, 2000)))
    sync = VelocitySync(pusher)
    first = sync.sync()
    assert (first.batches, first.full) == (2, True)
    _assert_online_equals_lake(pusher)

    api.lake.append_events(validate_events(pos.slice(4000)))
    later = sync.sync()
    assert later.batches == 1
    assert sync.sync().batches == 0  # nothing new: nothing folded again
    _assert_online_equals_lake(pusher)


def test_a_restarted_pusher_resumes_from_its_checkpoint(settings, chain) -> None:
    rt = Runtime(settings)
    pos = chain.pos.sort("sold_at")
    rt.lake.append_events(validate_events(pos.head(3000)))
    sync = VelocitySync(rt)
    sync.sync()
    sync.save(background=True)  # as the pusher loop does
    sync.wait_saved()
    rt.lake.append_events(validate_events(pos.slice(3000)))
    restarted = VelocitySync(Runtime(settings))  # a new process: state from the checkpoint
    report = restarted.sync()
    assert report.batches == 1
    _assert_online_equals_lake(rt)


def test_the_pusher_loop_reports_latencies_and_stops_on_request(settings, chain) -> None:
    rt = Runtime(settings)
    stop = threading.Event()
    loop = threading.Thread(target=run_pusher, args=(Runtime(settings), stop), daemon=True)
    loop.start()
    try:
        for part in chain.pos.head(3000).iter_slices(1000):
            rt.lake.append_events(validate_events(part))
        assert wait_pushed(rt, timeout=120)
        stats = read_stats(rt)
        assert stats["folded_batches"] == 3
        assert stats["samples"] == 3 and all(0 <= s < 120 for s in stats["latencies"])
        assert stats["errors"] == []
    finally:
        stop.set()
        loop.join(60)
    assert not loop.is_alive()
    assert (settings.feast_dir / "velocity_state.parquet").exists()
    _assert_online_equals_lake(rt)
    assert pl.read_parquet(settings.feast_dir / "velocity_state.parquet").height > 0
