"""Chunked retrain: bounded chunks, each a selection pool; one chunk is a plain train."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from forecasting.chunks import combine_gates, series_chunks, train_chunked
from forecasting.gate import GateDecision
from forecasting.train import train

KEYS = ["store_id", "sku_id"]


def _load(daily: pl.DataFrame):  # type: ignore[no-untyped-def]
    return lambda part: daily.join(part, on=KEYS, how="semi")


def test_chunks_are_bounded_disjoint_and_cover_every_series() -> None:
    keys = pl.DataFrame(
        {"store_id": [f"S{i % 3}" for i in range(10)], "sku_id": list("abcdefghij")}
    )
    chunks = series_chunks(keys, 4)
    assert [c.height for c in chunks] == [4, 3, 3]
    stacked = pl.concat(chunks)
    assert stacked.sort(KEYS).equals(keys.sort(KEYS))
    assert {s for c in chunks for s in c["store_id"]} == {"S0", "S1", "S2"}
    assert len(series_chunks(keys, 10)) == 1


@pytest.mark.slow
def test_one_chunk_is_exactly_a_plain_train(daily) -> None:
    keys = daily.select(KEYS).unique()
    out = train_chunked(
        keys, _load(daily), chunk_series=10_000, gated=False, horizon=14, n_windows=2
    )
    plain = train(daily, horizon=14, n_windows=2)
    assert out.chunks == 1
    # The same models and numbers; sums may differ in the last bit (polars aggregates in
    # parallel, in no fixed order).
    assert_frame_equal(out.result.champions, plain.champions, check_exact=False, rel_tol=1e-9)
    assert out.result.metrics.keys() == plain.metrics.keys()


@pytest.mark.slow
def test_chunks_train_each_pool_and_merge_exact_totals(daily) -> None:
    keys = daily.select(KEYS).unique()
    seen: list[tuple[int, int, int]] = []
    out = train_chunked(
        keys,
        _load(daily),
        chunk_series=6,
        incumbent=None,
        horizon=14,
        n_windows=2,
        on_chunk=lambda *a: seen.append(a),
    )
    assert out.chunks == 3 and [s[:2] for s in seen] == [(1, 3), (2, 3), (3, 3)]
    result = out.result
    assert result.champions.height == keys.height == result.metrics["series"]
    assert result.champions.select(KEYS).is_unique().all()
    # Each chunk's champions are what a plain train of that chunk picks.
    for part in series_chunks(keys, 6):
        alone = train(daily.join(part, on=KEYS, how="semi"), horizon=14, n_windows=2)
        mine = result.champions.join(part, on=KEYS, how="semi")
        assert mine.select(*KEYS, "model").equals(alone.champions.select(*KEYS, "model"))
    tested = result.errors.select("unique_id").n_unique()
    assert result.metrics["series"] >= tested
    assert out.decision is not None and out.decision.promote  # no champion yet


def test_gates_combine_by_series_weighted_loss() -> None:
    a = GateDecision(True, 10.0, 8.0, 30, "a")
    b = GateDecision(False, 2.0, 3.0, 10, "b")
    combined = combine_gates([a, b], margin=0.0)
    assert combined.series == 40
    assert combined.champion_loss == pytest.approx((10 * 30 + 2 * 10) / 40)
    assert combined.challenger_loss == pytest.approx((8 * 30 + 3 * 10) / 40)
    assert combined.promote
    assert not combine_gates([a, b], margin=0.3).promote
