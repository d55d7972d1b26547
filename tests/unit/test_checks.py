"""Data checks: placeholder blocks and missing prices are found and masked, real changes not."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from forecasting.checks import find_suspect_blocks, mask_suspect
from replen.synthetic import generate


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    """3 stores × 12 SKUs × 280 days: Poisson sales with a retail weekly cycle, priced."""
    rng = np.random.default_rng(5)
    d0 = date(2025, 1, 6)
    days = [d0 + timedelta(days=i) for i in range(280)]
    week = np.array([0.8, 0.8, 0.9, 1.0, 1.2, 1.5, 1.3])
    rows = []
    for store in ("S001", "S002", "S003"):
        for k in range(12):
            level = rng.uniform(2, 20)
            units = rng.poisson(level * week[[d.weekday() for d in days]])
            rows.append(
                pl.DataFrame(
                    {
                        "store_id": store,
                        "sku_id": f"SKU{k + 1:05d}",
                        "date": days,
                        "units": units.astype(float),
                        "price": 2.0 + k,
                    }
                )
            )
    return pl.concat(rows)


def test_generated_chain_has_no_suspect_block() -> None:
    from features.events import validate_events
    from features.sales import daily_sales

    chain = generate(stores=3, skus=12, days=300, seed=11)
    assert find_suspect_blocks(daily_sales(validate_events(chain.pos).accepted)).is_empty()


def _flatten(frame: pl.DataFrame, start, end, factor: float, where: pl.Expr) -> pl.DataFrame:
    """A placeholder block: each series' mean level times ``factor``, no weekly cycle."""
    inside = (pl.col("date") >= start) & (pl.col("date") <= end) & where
    level = pl.col("units").filter(inside).mean().over("store_id", "sku_id")
    return frame.with_columns(
        pl.when(inside).then((level * factor).round(0)).otherwise(pl.col("units")).alias("units")
    )


def test_real_history_has_no_suspect_block(history) -> None:
    assert find_suspect_blocks(history).is_empty()


def test_a_flat_half_level_block_is_found_for_the_whole_chain(history) -> None:
    end = history["date"].max()
    start = end - timedelta(days=27)
    blocks = find_suspect_blocks(_flatten(history, start, end, 0.5, pl.lit(True)))
    chain = blocks.filter(pl.col("scope") == "chain")
    assert chain.rows(named=True)[0] | {"level_ratio": 0, "cycle": 0} == {
        "scope": "chain",
        "store_id": None,
        "sku_id": None,
        "start": start,
        "end": end,
        "weeks": 4,
        "rule": "level_shift_no_cycle",
        "level_ratio": 0,
        "cycle": 0,
    }
    assert chain["level_ratio"][0] == pytest.approx(0.5, abs=0.12)


def test_an_outage_in_one_store_mid_history_is_found_for_that_store(history) -> None:
    end = history["date"].max()
    start, stop = end - timedelta(days=118), end - timedelta(days=98)  # three whole weeks
    broken = _flatten(history, start, stop, 0.3, pl.col("store_id") == "S002")
    blocks = find_suspect_blocks(broken).filter(pl.col("scope") == "store")
    assert blocks.select("store_id", "start", "end").rows() == [("S002", start, stop)]


def test_a_level_shift_that_keeps_the_weekly_cycle_is_demand(history) -> None:
    end = history["date"].max()
    up = history.with_columns(
        pl.when(pl.col("date") > end - timedelta(days=28))
        .then(pl.col("units") * 2)
        .otherwise(pl.col("units"))
        .alias("units")
    )
    assert find_suspect_blocks(up).is_empty()


def test_missing_prices_while_selling_are_found_per_series(history) -> None:
    end = history["date"].max()
    start = end - timedelta(days=13)
    dropped = history.with_columns(
        pl.when((pl.col("date") >= start) & (pl.col("sku_id") == "SKU00001"))
        .then(None)
        .otherwise(pl.col("price"))
        .alias("price")
    )
    blocks = find_suspect_blocks(dropped).filter(pl.col("rule") == "price_missing")
    series = blocks.filter(pl.col("scope") == "series")
    assert set(series["store_id"]) <= {"S001", "S002", "S003"}
    assert set(series["sku_id"]) == {"SKU00001"} and set(series["start"]) == {start}
    assert blocks.filter(pl.col("scope") == "chain").is_empty()  # one SKU is no chain event


def test_slow_movers_with_weeks_without_sales_have_no_price_block(history) -> None:
    """Weeks with no sale have no priced share; they never make the next selling week look
    as if its price went missing, with prices or without any (M5 exported without prices:
    629 such false blocks masked real demand; the what-if's (R,S) stock at 95% fill rose 27%)."""
    rng = np.random.default_rng(8)
    slow = history.with_columns(
        # Sales on one day in ten, whole weeks without any.
        pl.when(pl.lit(rng.random(history.height) < 0.9))
        .then(0.0)
        .otherwise(pl.col("units"))
        .alias("units")
    )
    assert (
        slow.group_by("store_id", "sku_id", pl.col("date").dt.week())
        .agg(pl.col("units").sum())
        .filter(pl.col("units") == 0)
        .height
        > 100
    )
    for frame in (slow, slow.drop("price"), slow.with_columns(pl.lit(None).alias("price"))):
        assert find_suspect_blocks(frame).filter(pl.col("rule") == "price_missing").is_empty()


def test_masked_days_are_exactly_the_blocks_days(history) -> None:
    end = history["date"].max()
    start = end - timedelta(days=13)
    blocks = pl.DataFrame(
        {
            "scope": ["store", "series"],
            "store_id": ["S001", "S003"],
            "sku_id": [None, "SKU00002"],
            "start": [start, start],
            "end": [end, start + timedelta(days=2)],
        }
    )
    masked = mask_suspect(history, blocks)
    expected = (pl.col("date") >= start) & (
        (pl.col("store_id") == "S001")
        | (
            (pl.col("store_id") == "S003")
            & (pl.col("sku_id") == "SKU00002")
            & (pl.col("date") <= start + timedelta(days=2))
        )
    )
    assert np.array_equal(masked["suspect"].to_numpy(), masked.select(expected).to_series())
    assert masked.height == history.height
