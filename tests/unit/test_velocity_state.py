"""The incremental velocity state equals velocity computed from the whole lake."""

from __future__ import annotations

import itertools

import polars as pl
import pytest

from features.events import validate_events
from features.sales import daily_sales, velocity
from features.velocity_state import VelocityState

COLUMNS = ["store_id", "sku_id", "as_of", "units_1d", "units_7d", "units_28d"]


def _expected(events: pl.DataFrame) -> pl.DataFrame:
    return velocity(daily_sales(events)).sort("store_id", "sku_id")


def _assert_same(state: VelocityState, events: pl.DataFrame) -> None:
    got = state.velocity().sort("store_id", "sku_id")
    want = _expected(events)
    assert got.select(COLUMNS).equals(want.select(COLUMNS))
    assert got["days_since_last_sale"].to_list() == want["days_since_last_sale"].to_list()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_folding_shuffled_batches_in_any_order_equals_the_whole_lake(chain, seed) -> None:
    events = validate_events(chain.pos).accepted.sample(fraction=1.0, shuffle=True, seed=seed)
    state = VelocityState()
    cuts = sorted(pl.Series(range(1, events.height)).sample(7, seed=seed).to_list())
    bounds = [0, *cuts, events.height]
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        state.fold(events.slice(a, b - a), [f"b{i}"])
    _assert_same(state, events)


def test_touched_keys_are_those_of_the_batch_and_their_velocity_is_exact(chain) -> None:
    events = validate_events(chain.pos).accepted.sort("sold_at")
    head, tail = events.head(events.height - 50), events.tail(50)
    state = VelocityState()
    state.fold(head, ["a"])
    touched = state.fold(tail, ["b"])
    assert touched.sort("store_id", "sku_id").equals(
        tail.select("store_id", "sku_id").unique().sort("store_id", "sku_id")
    )
    part = state.velocity(touched).sort("store_id", "sku_id")
    want = _expected(events).join(touched, on=["store_id", "sku_id"], how="semi")
    assert part.select(COLUMNS).equals(want.select(COLUMNS))


def test_checkpoint_round_trip_then_more_batches(tmp_path, chain) -> None:
    events = validate_events(chain.pos).accepted
    first, rest = events.head(3000), events.slice(3000)
    state = VelocityState()
    state.fold(first, ["one"])
    state.pushed_as_of = state.newest
    state.save(tmp_path / "state.parquet")
    loaded = VelocityState.load(tmp_path / "state.parquet")
    assert loaded.folded == {"one"} and loaded.pushed_as_of == state.newest
    loaded.fold(rest, ["two"])
    _assert_same(loaded, events)


def test_a_snapshot_checkpoints_what_was_folded_when_it_was_taken(tmp_path, chain) -> None:
    # The pusher writes its checkpoint from a snapshot in a thread while it keeps folding.
    events = validate_events(chain.pos).accepted
    first, rest = events.head(3000), events.slice(3000)
    state = VelocityState()
    state.fold(first, ["one"])
    snapshot = state.snapshot()
    state.fold(rest, ["two"])
    snapshot.save(tmp_path / "state.parquet")
    loaded = VelocityState.load(tmp_path / "state.parquet")
    assert loaded.folded == {"one"} and snapshot.folded == {"one"}
    _assert_same(loaded, first)
    loaded.fold(rest, ["two"])
    _assert_same(loaded, events)
    _assert_same(state, events)


def test_a_batch_folded_twice_is_refused(chain) -> None:
    events = validate_events(chain.pos.head(10)).accepted
    state = VelocityState()
    state.fold(events, ["x"])
    with pytest.raises(ValueError, match="already folded"):
        state.fold(events, ["x"])


def test_returns_only_keys_have_no_last_sale(chain) -> None:
    events = validate_events(chain.pos.head(5)).accepted.with_columns(
        (-pl.col("quantity").abs()).alias("quantity")
    )
    state = VelocityState()
    state.fold(events, ["r"])
    got = state.velocity()
    assert got["days_since_last_sale"].null_count() == got.height
    assert got["units_28d"].sum() == 0


def test_days_leaving_the_window_and_late_lines(chain) -> None:
    # Batches jump forward by less and by more than the kept days; a late line older than
    # the window still moves the last sale. Always equal to the whole lake's velocity.
    events = validate_events(chain.pos).accepted.sort("sold_at")
    state = VelocityState()
    parts = [events.head(2000)]
    for i, jump in enumerate([3, 17, 45, 1, 120]):
        shift = events.slice(2000 + 300 * i, 300).with_columns(
            pl.col("sold_at") + pl.duration(days=jump * (i + 1))
        )
        parts.append(shift)
    late = events.head(20).with_columns(pl.col("sold_at") - pl.duration(days=400))
    parts.append(late)
    for i, part in enumerate(parts):
        state.fold(part, [f"p{i}"])
        _assert_same(state, pl.concat(parts[: i + 1]))


def test_unknown_keys_are_left_out_and_touched_velocity_is_sorted(chain) -> None:
    events = validate_events(chain.pos).accepted
    state = VelocityState()
    state.fold(events, ["a"])
    keys = pl.DataFrame({"store_id": ["nowhere", "S001"], "sku_id": ["none", "SKU00002"]})
    known = events.select("store_id", "sku_id").unique().head(3)
    got = state.velocity(pl.concat([keys, known]))
    assert got.select("store_id", "sku_id").equals(got.select("store_id", "sku_id").sort("*"))
    assert "nowhere" not in got["store_id"].to_list()
    assert got.height >= 3


def test_a_checkpoint_of_the_earlier_layout_loads(tmp_path, chain) -> None:
    # The earlier state appended rows and aggregated when read: a key could have several
    # rows (the max last sale wins), a day several rows (summed), days out of the window.
    import json

    events = validate_events(chain.pos).accepted
    state = VelocityState()
    state.fold(events, ["one"])
    keys, recent = state.frames()
    stale = keys.with_columns(pl.col("last_sale") - pl.duration(days=30))
    halves = pl.concat([recent.with_columns(pl.col("units") / 2)] * 2)
    old = recent.with_columns(pl.col("date") - pl.duration(days=60), pl.lit(99.0).alias("units"))
    frame = pl.concat(
        [
            pl.concat([keys, stale]).with_columns(
                pl.lit(None, pl.Date).alias("date"), pl.lit(None, pl.Float64).alias("units")
            ),
            pl.concat([halves, old]).with_columns(pl.lit(None, pl.Date).alias("last_sale")),
        ],
        how="diagonal",
    ).with_columns(pl.col("date").is_null().alias("is_key"))
    assert state.newest is not None
    meta = {
        "replen.newest": state.newest.isoformat(),
        "replen.pushed_as_of": "",
        "replen.folded": json.dumps(["one"]),
    }
    frame.write_parquet(tmp_path / "old.parquet", metadata=meta)
    loaded = VelocityState.load(tmp_path / "old.parquet")
    assert loaded.folded == {"one"} and loaded.newest == state.newest
    _assert_same(loaded, events)
