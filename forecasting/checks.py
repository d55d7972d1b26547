"""Data checks before modelling: blocks of history that are not demand, found and masked.

A broken extract or a placeholder block looks like this: the level jumps (often to about
half) while the weekly cycle vanishes, or prices stop arriving while sales go on. Such
weeks are found per chain, per store and per series, reported, and masked (``suspect``):
the training frame treats them like stockout days (censored, not zero demand) and the
backtest does not score on them.

The weekly-cycle rule compares each week's weekday pattern with the scope's usual one:
``beta`` is the regression slope of the week's relative daily sales on the usual relative
weekday profile (1: the usual cycle, 0: none). A scope is tested only where its cycle is
reliably visible week by week (the quartiles of ``beta`` lie within ``1 - min_cycle``
of 1), which rules out most single slow series, whose weeks are mostly noise; and a block's
pooled slope must lie ``evidence`` standard errors below 1, the error measured from the
scope's usual week-to-week spread (on Poisson series with a retail cycle, 2-week slopes
reached 4 standard errors below 1 by chance; the M5 placeholder block lies 6.4 below).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

__all__ = ["CHECK_COLUMNS", "find_suspect_blocks", "mask_suspect", "no_blocks"]

CHECK_COLUMNS = (
    "scope",
    "store_id",
    "sku_id",
    "start",
    "end",
    "weeks",
    "rule",
    "level_ratio",
    "cycle",
)

_KEYS = {"chain": ["_all"], "store": ["store_id"], "series": ["store_id", "sku_id"]}


def find_suspect_blocks(
    history: pl.DataFrame,
    *,
    cycle_cut: float = 0.35,
    level_cut: float = 0.7,
    min_cycle: float = 0.5,
    price_share_cut: float = 0.5,
    reference_weeks: int = 8,
    min_weeks: int = 2,
    evidence: float = 5.0,
    lookback_weeks: int = 110,
) -> pl.DataFrame:
    """Blocks of at least ``min_weeks`` whole weeks (aligned to the last day) within the
    last ``lookback_weeks`` that look like no real demand (a single odd week is too often a
    real one: a holiday, a heatwave).

    Rules (``rule`` column): ``level_shift_no_cycle`` — the week's mean differs from the
    median of the ``reference_weeks`` before it by more than a factor ``1/level_cut``
    while its weekly cycle is under ``cycle_cut`` of the usual one; ``price_missing`` —
    fewer than ``price_share_cut`` of the selling days carry a price where before nearly
    all did (only when ``history`` has a ``price`` column). Scopes: ``chain``, ``store``,
    ``series``. Returns :data:`CHECK_COLUMNS`, one row per block.
    """
    if history.is_empty():
        return no_blocks()
    end: date = history["date"].max()  # type: ignore[assignment]
    # The last two years (and the reference weeks before them) are what the models learn
    # from; older blocks would cost time and change nothing.
    history = history.filter(pl.col("date") > end - timedelta(weeks=lookback_weeks))
    # Without prices (no column, or never one) there is nothing to go missing.
    priced = "price" in history.columns and history["price"].null_count() < history.height
    base = history.with_columns(
        pl.lit(0).alias("_all"),
        ((pl.lit(end) - pl.col("date")).dt.total_days() // 7).alias("_wk"),
        pl.col("date").dt.weekday().alias("_dow"),
        pl.col("units").cast(pl.Float64),
        (
            (pl.col("units") > 0) & pl.col("price").is_not_null()
            if priced
            else pl.lit(None, dtype=pl.Boolean)
        ).alias("_priced"),
    )
    found = []
    for scope, keys in _KEYS.items():
        weeks = _weekly(base, keys, reference_weeks)
        cycle = _cycle_flags(weeks, keys, cycle_cut, level_cut, min_cycle)
        price = _price_flags(weeks, keys, price_share_cut) if priced else weeks.clear()
        for rule, flags in (("level_shift_no_cycle", cycle), ("price_missing", price)):
            if flags.height:
                blocks = _blocks(flags, keys, scope, rule, end).filter(pl.col("weeks") >= min_weeks)
                if rule == "level_shift_no_cycle":
                    # The block's pooled slope must be far below 1 for this scope's noise.
                    sigma = pl.col("_sigma") / pl.col("weeks").sqrt()
                    blocks = blocks.filter(pl.col("cycle") < 1 - evidence * sigma)
                found.append(blocks)
    if not found:
        return no_blocks()
    return pl.concat(found, how="diagonal_relaxed").select(CHECK_COLUMNS).sort("start", "scope")


def mask_suspect(history: pl.DataFrame, blocks: pl.DataFrame) -> pl.DataFrame:
    """``history`` with a boolean ``suspect`` column: true on days inside any block that
    covers the row's chain, store or series."""
    flag = pl.lit(False)
    if blocks.is_empty():
        return history.with_columns(flag.alias("suspect"))
    out = history.with_row_index("_r").with_columns(pl.lit(0).alias("_all"))
    hits = []
    for scope, keys in _KEYS.items():
        part = blocks.filter(pl.col("scope") == scope)
        if part.is_empty():
            continue
        days = part.with_columns(pl.lit(0).alias("_all")).select(
            *keys, pl.date_ranges("start", "end").alias("date")
        )
        days = days.explode("date").unique()
        joined = out.select("_r", *keys, "date").join(days, on=[*keys, "date"], how="semi")
        hits.append(joined["_r"])
    rows = pl.concat(hits).unique() if hits else pl.Series("_r", [], dtype=pl.UInt32)
    return out.with_columns(pl.col("_r").is_in(rows.implode()).alias("suspect")).drop("_r", "_all")


def _weekly(base: pl.DataFrame, keys: list[str], ref: int) -> pl.DataFrame:
    """Per scope and week: level, cycle slope ``beta`` and priced share of selling days."""
    if keys == ["store_id", "sku_id"]:  # already one row per series and day
        daily = base.with_columns((pl.col("units") > 0).alias("_sold"))
    else:
        daily = base.group_by(*keys, "date").agg(
            pl.col("units").sum(),
            pl.col("_wk").first(),
            pl.col("_dow").first(),
            (pl.col("units") > 0).any().alias("_sold"),
            pl.col("_priced").any().alias("_priced"),
        )
    profile = daily.group_by(*keys, "_dow").agg(pl.col("units").mean().alias("_p"))
    profile = profile.with_columns(
        (pl.col("_p") / pl.col("_p").mean().over(keys) - 1).fill_nan(0.0).alias("_x")
    )
    rel = pl.col("units") / pl.col("units").mean() - 1
    weeks = (
        daily.join(profile.drop("_p"), on=[*keys, "_dow"])
        .group_by(*keys, "_wk")
        .agg(
            pl.col("units").mean().alias("level"),
            pl.len().alias("_n"),
            (rel * pl.col("_x")).sum().alias("_xy"),
            pl.col("_x").pow(2).sum().alias("_xx"),
            pl.col("_sold").sum().alias("_sold"),
            pl.col("_priced").sum().alias("_priced"),
        )
        .filter(pl.col("_n") == 7)
        .sort(*keys, "_wk", descending=[False] * len(keys) + [True])
    )
    over = keys
    return weeks.with_columns(
        pl.when(pl.col("_xx") > 0).then(pl.col("_xy") / pl.col("_xx")).alias("cycle"),
        pl.col("level").shift(1).rolling_median(ref, min_samples=4).over(over).alias("_ref"),
        # A week without sales has no share (null, not NaN: a NaN reference would pass
        # any threshold and flag the next selling week).
        pl.when(pl.col("_sold") > 0).then(pl.col("_priced") / pl.col("_sold")).alias("_share"),
    ).with_columns(
        pl.col("_share").shift(1).rolling_median(ref, min_samples=2).over(over).alias("_ref_share"),
        (pl.col("level") / pl.col("_ref")).alias("level_ratio"),
    )


def _cycle_flags(
    weeks: pl.DataFrame, keys: list[str], cycle_cut: float, level_cut: float, min_cycle: float
) -> pl.DataFrame:
    # Visible: most weeks' slopes stay near 1 (sparse series swing far both ways); the
    # quartiles, not the extremes, so that a block itself does not hide the cycle.
    visible = (pl.col("cycle").quantile(0.25).over(keys) >= min_cycle) & (
        pl.col("cycle").quantile(0.75).over(keys) <= 2 - min_cycle
    )
    shifted = (pl.col("_ref") > 0) & (
        (pl.col("level_ratio") < level_cut) | (pl.col("level_ratio") > 1 / level_cut)
    )
    spread = (pl.col("cycle").quantile(0.75) - pl.col("cycle").quantile(0.25)).over(keys) / 1.349
    return weeks.with_columns(spread.alias("_sigma")).filter(
        visible & (pl.col("cycle") < cycle_cut) & shifted.fill_null(False)
    )


def _price_flags(weeks: pl.DataFrame, keys: list[str], cut: float) -> pl.DataFrame:
    return weeks.filter(
        (pl.col("_sold") > 0) & (pl.col("_share") < cut) & (pl.col("_ref_share") >= 0.9)
    )


def _blocks(flags: pl.DataFrame, keys: list[str], scope: str, rule: str, end: date) -> pl.DataFrame:
    """Merge consecutive flagged weeks into blocks with their first and last day."""
    runs = flags.sort(*keys, "_wk").with_columns(
        (pl.col("_wk").diff().over(keys).fill_null(1) != 1).cum_sum().over(keys).alias("_run")
    )
    merged = runs.group_by(*keys, "_run").agg(
        pl.col("_wk").max().alias("_first"),
        pl.col("_wk").min().alias("_last"),
        pl.len().alias("weeks"),
        pl.col("level_ratio").median(),
        (pl.col("_xy").sum() / pl.col("_xx").sum()).alias("cycle"),
        (pl.col("_sigma").first() if "_sigma" in flags.columns else pl.lit(0.0)).alias("_sigma"),
    )
    return merged.select(
        pl.lit(scope).alias("scope"),
        (pl.col("store_id") if "store_id" in keys else pl.lit(None, dtype=pl.String)).alias(
            "store_id"
        ),
        (pl.col("sku_id") if "sku_id" in keys else pl.lit(None, dtype=pl.String)).alias("sku_id"),
        (pl.lit(end) - pl.duration(days=pl.col("_first") * 7 + 6)).alias("start"),
        (pl.lit(end) - pl.duration(days=pl.col("_last") * 7)).alias("end"),
        pl.col("weeks").cast(pl.Int64),
        pl.lit(rule).alias("rule"),
        "level_ratio",
        "cycle",
        "_sigma",
    )


def no_blocks() -> pl.DataFrame:
    """No suspect block: :data:`CHECK_COLUMNS` with their types, no row."""
    return pl.DataFrame(
        schema={
            "scope": pl.String,
            "store_id": pl.String,
            "sku_id": pl.String,
            "start": pl.Date,
            "end": pl.Date,
            "weeks": pl.Int64,
            "rule": pl.String,
            "level_ratio": pl.Float64,
            "cycle": pl.Float64,
        }
    )
