"""Seeded synthetic retail chain: POS lines, master data and stock, realistic enough to plan on.

Demand per store×SKU and day is negative-binomial around a level with weekly and yearly
seasonality, trend, price elasticity (price changes, promotions with extra uplift), and
intermittent slow movers. Stockout periods censor sales to zero and show up as zero
on-hand inventory snapshots. Sales are split into POS lines; a few lines are returns.
Beside them, the reference files a retailer keeps: a calendar (holidays, paydays), the
price list, the promotion plan (including promotions still to come) and item attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from kernel.errors import InvalidInput
from kernel.files import write_csv, write_table

__all__ = ["REFERENCE_FILES", "SyntheticRetail", "generate"]

REFERENCE_FILES = ("calendar", "prices", "promotions", "attributes")

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class SyntheticRetail:
    """What the generator produces; every frame follows the Replen data contracts."""

    pos: pl.DataFrame  # POS lines
    suppliers: pl.DataFrame
    items: pl.DataFrame
    stock: pl.DataFrame  # current stock position
    inventory: pl.DataFrame  # on-hand snapshots over history (stockouts are zeros)
    demand: pl.DataFrame  # true (uncensored) daily demand, for evaluation only
    start: date
    end: date
    calendar: pl.DataFrame = field(default_factory=pl.DataFrame)
    prices: pl.DataFrame = field(default_factory=pl.DataFrame)
    promotions: pl.DataFrame = field(default_factory=pl.DataFrame)
    attributes: pl.DataFrame = field(default_factory=pl.DataFrame)

    def write(self, directory: Path) -> dict[str, Path]:
        """Write every frame as Parquet (POS also as CSV, the usual export format)."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("pos", "suppliers", "items", "stock", "inventory", "demand"):
            path = directory / f"{name}.parquet"
            write_table(getattr(self, name), path)
            paths[name] = path
        # Rules as CSV, the format `replen rules load` reads.
        rules = directory / "rules"
        rules.mkdir(exist_ok=True)
        write_csv(self.suppliers, rules / "suppliers.csv")
        write_csv(
            self.items.select(
                "sku_id", "supplier_id", "unit_cost", "pack_size", "moq_units", "shelf_life_days"
            ),
            rules / "items.csv",
        )
        paths["rules"] = rules
        # What a retailer's systems export: stock positions, item and store names.
        stock = directory / "stock_positions.csv"
        write_csv(
            self.stock.with_columns(pl.col("as_of").dt.strftime("%Y-%m-%dT%H:%M:%S%:z")), stock
        )
        paths["stock_positions"] = stock
        for name, frame in (("item_master", self.item_master()), ("stores", self.store_master())):
            path = directory / f"{name}.csv"
            write_csv(frame, path)
            paths[name] = path
        # Reference files as CSV, the format `replen ingest calendar|prices|…` reads.
        reference = directory / "reference"
        reference.mkdir(exist_ok=True)
        for name in REFERENCE_FILES:
            frame = getattr(self, name)
            if frame.width:
                write_csv(frame, reference / f"{name}.csv")
                paths[name] = reference / f"{name}.csv"
        return paths

    def item_master(self) -> pl.DataFrame:
        """Item names as an ERP exports them (``replen ingest items``)."""
        return self.items.select(
            "sku_id",
            pl.format("Article {}", pl.col("sku_id").str.slice(3)).alias("name"),
            "description",
            pl.lit("unit").alias("unit"),
            pl.format("Dept {}", pl.col("supplier_id").str.slice(3)).alias("department"),
            pl.lit(None, dtype=pl.String).alias("category"),
        )

    def store_master(self) -> pl.DataFrame:
        """Store names (``replen ingest stores``)."""
        stores = self.stock.select("store_id").unique().sort("store_id")
        return stores.with_columns(
            pl.format("Store {}", pl.col("store_id").str.slice(1)).alias("name"),
            pl.lit("North").alias("region"),
            pl.lit("Europe/Paris").alias("timezone"),
        )


def generate(
    stores: int = 5,
    skus: int = 40,
    days: int = 730,
    seed: int = 7,
    end: date | None = None,
    suppliers: int = 4,
) -> SyntheticRetail:
    """Generate ``stores × skus`` daily series over ``days`` days ending on ``end``."""
    if stores < 1 or skus < 1 or days < 14:
        raise InvalidInput(
            f"need stores >= 1, skus >= 1 and days >= 14; got stores={stores}, "
            f"skus={skus}, days={days}",
            rule="size.minimum",
        )
    rng = np.random.default_rng(seed)
    end = end or date(2026, 11, 29)
    start = end - timedelta(days=days - 1)
    n_suppliers = max(1, min(suppliers, skus))

    store_ids = [f"S{i + 1:03d}" for i in range(stores)]
    sku_ids = [f"SKU{i + 1:05d}" for i in range(skus)]
    supplier_tbl = _suppliers(rng, n_suppliers)
    items = _items(rng, sku_ids, supplier_tbl["supplier_id"].to_list())

    # Per-series parameters, shape (stores, skus).
    slow = rng.random(skus) < 0.35
    sku_level = np.where(slow, rng.uniform(0.05, 0.6, skus), rng.lognormal(1.2, 0.7, skus))
    store_mult = rng.uniform(0.6, 1.5, stores)
    level = store_mult[:, None] * sku_level[None, :]
    trend = rng.normal(0.0, 0.25, (stores, skus)) / 365.0  # relative change per day
    weekly_amp = rng.uniform(0.1, 0.5, skus)
    yearly_amp = rng.uniform(0.0, 0.3, skus)
    yearly_phase = rng.uniform(0, 2 * np.pi, skus)
    dispersion = np.where(slow, 0.6, rng.uniform(2.0, 8.0, skus))  # NB size

    t = np.arange(days)
    dates = np.array([start + timedelta(days=int(i)) for i in t])
    dow = np.array([d.weekday() for d in dates])
    weekly = 1.0 + weekly_amp[None, :] * np.where(dow[:, None] >= 4, 1.0, -0.35)  # (days, skus)
    yearly = 1.0 + yearly_amp[None, :] * np.sin(2 * np.pi * t[:, None] / 365.25 + yearly_phase)

    base_price = items["unit_price"].to_numpy()
    price = _price_paths(rng, days, base_price)  # (days, skus)
    promo = _promotions(rng, days, stores, skus)  # (stores, days, skus) bool
    promo_price = np.where(promo, price[None, :, :] * 0.85, price[None, :, :])
    elasticity = -1.6
    uplift = np.where(promo, 1.4, 1.0)
    mean = (
        level[:, None, :]
        * weekly[None, :, :]
        * yearly[None, :, :]
        * np.clip(1.0 + trend[:, None, :] * t[None, :, None], 0.2, None)
        * (promo_price / base_price[None, None, :]) ** elasticity
        * uplift
    )
    size = dispersion[None, None, :]
    demand = rng.negative_binomial(size, size / (size + mean))  # (stores, days, skus)

    stockout = _stockouts(rng, stores, days, skus)
    sold = np.where(stockout, 0, demand)

    key_store = np.repeat(np.array(store_ids), days * skus)
    key_date = np.tile(np.repeat(dates.astype("datetime64[D]"), skus), stores)
    key_sku = np.tile(np.array(sku_ids), stores * days)
    daily = pl.DataFrame(
        {
            "store_id": key_store,
            "sku_id": key_sku,
            "date": pl.Series(key_date).cast(pl.Date),
            "demand": demand.ravel(),
            "units": sold.ravel(),
            "unit_price": np.round(promo_price.ravel(), 2),
            "promo": promo.ravel(),
            "stockout": stockout.ravel(),
        }
    )
    pos = _pos_lines(rng, daily)
    inventory = _inventory(rng, daily)
    stock = _stock(rng, daily, end)
    return SyntheticRetail(
        pos=pos,
        suppliers=supplier_tbl,
        items=items,
        stock=stock,
        inventory=inventory,
        demand=daily.select("store_id", "sku_id", "date", "demand", "units", "stockout"),
        start=start,
        end=end,
        calendar=_calendar(start, end + timedelta(days=90)),
        prices=_price_list(sku_ids, dates, price),
        promotions=_promotion_plan(store_ids, sku_ids, dates, promo, seed),
        attributes=_attributes(sku_ids, slow, seed),
    )


def _calendar(start: date, end: date) -> pl.DataFrame:
    """Paydays (1st and 15th) and a few fixed holidays, chain-wide."""
    days = pl.date_range(start, end, eager=True)
    holidays = {(1, 1): "New Year", (5, 1): "Labour Day", (12, 24): "Christmas Eve"}
    return (
        pl.DataFrame({"date": days})
        .with_columns(
            pl.when(pl.col("date").dt.day().is_in([1, 15])).then(1).otherwise(0).alias("payday"),
            pl.coalesce(
                [
                    pl.when((pl.col("date").dt.month() == m) & (pl.col("date").dt.day() == d)).then(
                        pl.lit(name)
                    )
                    for (m, d), name in holidays.items()
                ]
            ).alias("event"),
        )
        .with_columns(
            pl.when(pl.col("event").is_not_null()).then(pl.lit("National")).alias("event_type")
        )
        .filter((pl.col("payday") == 1) | pl.col("event").is_not_null())
        .select(
            pl.col("date").cast(pl.String),
            pl.lit("*").alias("store_id"),
            "event",
            "event_type",
            "payday",
        )
    )


def _price_list(sku_ids: list[str], dates: np.ndarray, price: np.ndarray) -> pl.DataFrame:
    """One chain-wide row per SKU and price change (``valid_from``)."""
    frame = pl.DataFrame(
        {
            "sku_id": np.repeat(np.array(sku_ids)[None, :], len(dates), axis=0).ravel(),
            "valid_from": np.repeat(dates.astype("datetime64[D]"), len(sku_ids)),
            "price": price.ravel(),
        }
    ).with_columns(pl.col("valid_from").cast(pl.Date))
    changed = pl.col("price") != pl.col("price").shift(1).over("sku_id")
    return (
        frame.sort("sku_id", "valid_from")
        .filter(changed.fill_null(True))
        .select(
            "sku_id", pl.col("valid_from").cast(pl.String), "price", pl.lit("").alias("store_id")
        )
    )


def _promotion_plan(
    store_ids: list[str], sku_ids: list[str], dates: np.ndarray, promo: np.ndarray, seed: int
) -> pl.DataFrame:
    """Each run of promotion days per store×SKU as one row (15% off), plus one promotion per
    SKU in the weeks after the history: the plan the forecast should see coming."""
    rows = []
    for s, store in enumerate(store_ids):
        for k, sku in enumerate(sku_ids):
            flags = promo[s, :, k]
            edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(int), [0]])))
            for a, b in zip(edges[::2], edges[1::2], strict=True):
                rows.append((store, sku, dates[a], dates[b - 1]))
    frame = pl.DataFrame(
        rows, schema=["store_id", "sku_id", "start_date", "end_date"], orient="row"
    )
    rng = np.random.default_rng(seed + 1)  # its own stream: the sales above stay as they were
    last = dates[-1]
    ahead = [
        ("*", sku, last + timedelta(days=int(d)), last + timedelta(days=int(d) + 6))
        for sku, d in zip(sku_ids, rng.integers(3, 40, len(sku_ids)), strict=True)
        if rng.random() < 0.3
    ]
    plan = pl.concat(
        [frame, pl.DataFrame(ahead, schema=frame.schema, orient="row")]
    ).with_row_index("n")
    return plan.select(
        pl.format("P{}", pl.col("n").cast(pl.String).str.zfill(5)).alias("promo_id"),
        "store_id",
        "sku_id",
        pl.col("start_date").cast(pl.String),
        pl.col("end_date").cast(pl.String),
        pl.lit(0.15).alias("discount"),
    )


def _attributes(sku_ids: list[str], slow: np.ndarray, seed: int) -> pl.DataFrame:
    """Four departments; slow movers are mostly non-food."""
    rng = np.random.default_rng(seed + 2)
    departments = rng.integers(1, 5, len(sku_ids))
    return pl.DataFrame(
        {
            "sku_id": sku_ids,
            "department": [f"D{d}" for d in departments],
            "category": ["NONFOOD" if s else "FOOD" for s in slow],
        }
    )


def _suppliers(rng: np.random.Generator, n: int) -> pl.DataFrame:
    patterns = [("Mon", "Thu"), ("Tue",), ("Mon", "Wed", "Fri"), ("Wed",), ("Tue", "Fri")]
    rows = []
    for i in range(n):
        days = patterns[i % len(patterns)]
        idx = sorted(_WEEKDAYS.index(d) for d in days)
        gaps = [(idx[(k + 1) % len(idx)] - idx[k]) % 7 or 7 for k in range(len(idx))]
        lt = int(rng.integers(2, 11))
        rows.append(
            {
                "supplier_id": f"SUP{i + 1:02d}",
                "name": f"Supplier {i + 1}",
                "lead_time_mean": float(lt),
                "lead_time_std": round(float(rng.uniform(0.0, 0.3) * lt), 2),
                "order_days": ",".join(days),
                "review_period_days": max(gaps),
                "min_order_value": float(rng.choice([0.0, 0.0, 100.0, 250.0])),
                "currency": "EUR",
            }
        )
    return pl.DataFrame(rows)


def _items(rng: np.random.Generator, sku_ids: list[str], supplier_ids: list[str]) -> pl.DataFrame:
    n = len(sku_ids)
    price = np.round(rng.lognormal(1.5, 0.7, n), 2) + 0.49
    return pl.DataFrame(
        {
            "sku_id": sku_ids,
            "supplier_id": [supplier_ids[i % len(supplier_ids)] for i in range(n)],
            "description": [f"Item {s[3:]}" for s in sku_ids],
            "unit_price": price,
            "unit_cost": np.round(price * rng.uniform(0.45, 0.7, n), 2),
            "pack_size": rng.choice([1, 1, 4, 6, 12, 24], n).astype(np.int64),
            "moq_units": rng.choice([0, 0, 6, 12, 24], n).astype(np.int64),
            "shelf_life_days": [int(x) if x > 0 else None for x in rng.choice([0, 0, 0, 30], n)],
        }
    )


def _price_paths(rng: np.random.Generator, days: int, base: np.ndarray) -> np.ndarray:
    """Shelf price per day and SKU with one to three permanent step changes."""
    price = np.tile(base, (days, 1)).astype(float)
    for j in range(base.size):
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(days // 10, days))
            price[at:, j] *= rng.uniform(0.9, 1.12)
    return np.round(price, 2)


def _promotions(rng: np.random.Generator, days: int, stores: int, skus: int) -> np.ndarray:
    """About six promotions of 5-14 days per SKU per two years, chain-wide or per store."""
    promo = np.zeros((stores, days, skus), dtype=bool)
    n = max(1, int(days / 120))
    for j in range(skus):
        for _ in range(int(rng.integers(0, n + 1))):
            at = int(rng.integers(0, days))
            length = int(rng.integers(5, 15))
            where = slice(None) if rng.random() < 0.7 else int(rng.integers(0, stores))
            promo[where, at : at + length, j] = True
    return promo


def _stockouts(rng: np.random.Generator, stores: int, days: int, skus: int) -> np.ndarray:
    out = np.zeros((stores, days, skus), dtype=bool)
    n = stores * skus * max(1, days // 180)
    s = rng.integers(0, stores, n)
    k = rng.integers(0, skus, n)
    at = rng.integers(0, days, n)
    length = rng.integers(1, 8, n)
    for i in range(n):
        out[s[i], at[i] : at[i] + length[i], k[i]] = True
    return out


def _pos_lines(rng: np.random.Generator, daily: pl.DataFrame) -> pl.DataFrame:
    """Split daily sales into basket lines of 1-3 units and add a few returns."""
    sold = daily.filter(pl.col("units") > 0)
    units = sold["units"].to_numpy()
    n_lines = np.maximum(1, np.ceil(units / rng.uniform(1.0, 3.0, units.size))).astype(np.int64)
    n_lines = np.minimum(n_lines, units)
    idx = np.repeat(np.arange(units.size), n_lines)
    within = np.arange(idx.size) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
    base = units[idx] // n_lines[idx]
    qty = base + (within < (units[idx] - base * n_lines[idx])).astype(np.int64)
    lines = sold[idx].with_columns(pl.Series("quantity", qty))

    # Returns: about 1.5% of lines come back one to ten days later, one unit each.
    ret_mask = rng.random(lines.height) < 0.015
    returns = lines.filter(pl.Series(ret_mask)).with_columns(
        pl.col("date")
        + pl.duration(days=pl.lit(pl.Series(rng.integers(1, 11, int(ret_mask.sum()))))),
        pl.lit(-1, dtype=pl.Int64).alias("quantity"),
        pl.lit(False).alias("promo"),
    )
    end = daily["date"].max()
    lines = pl.concat([lines, returns.filter(pl.col("date") <= end)])

    n = lines.height
    seconds = rng.integers(8 * 3600, 21 * 3600, n)
    registers = rng.integers(1, 4, n)
    lines = (
        lines.with_columns(
            (
                pl.col("date").cast(pl.Datetime("us", "UTC"))
                + pl.duration(seconds=pl.lit(pl.Series(seconds)))
            ).alias("sold_at"),
            pl.format("R{}", pl.Series(registers)).alias("register_id"),
            pl.when(pl.col("promo"))
            .then(pl.format("PROMO-{}-{}", pl.col("sku_id"), pl.col("date").dt.strftime("%G%V")))
            .otherwise(None)
            .alias("promo_id"),
        )
        .sort("sold_at", "store_id", "sku_id")
        .with_row_index("seq")
        .select(
            pl.format("E{}", pl.col("seq").cast(pl.String).str.zfill(10)).alias("event_id"),
            "store_id",
            "sku_id",
            "sold_at",
            pl.col("quantity").cast(pl.Int64),
            pl.col("unit_price").cast(pl.Float64),
            "promo_id",
            "register_id",
        )
    )
    return lines


def _inventory(rng: np.random.Generator, daily: pl.DataFrame) -> pl.DataFrame:
    """Weekly on-hand counts, plus a zero at each stockout start and a recount after it."""
    marked = daily.sort("store_id", "sku_id", "date").with_columns(
        pl.col("stockout").shift(1).over("store_id", "sku_id").fill_null(False).alias("prev")
    )
    starts = marked.filter(pl.col("stockout") & ~pl.col("prev")).select(
        "store_id", "sku_id", "date", pl.lit(0).alias("on_hand")
    )
    ends = marked.filter(~pl.col("stockout") & pl.col("prev"))
    weekly = marked.filter((pl.col("date").dt.weekday() == 1) & ~pl.col("stockout"))
    counts = pl.concat([ends, weekly]).select(
        "store_id",
        "sku_id",
        "date",
        (pl.col("demand") * 4 + 5).cast(pl.Int64).alias("on_hand"),
    )
    snaps = pl.concat([starts.with_columns(pl.col("on_hand").cast(pl.Int64)), counts])
    return (
        snaps.unique(["store_id", "sku_id", "date"], keep="first")
        .with_columns(
            (pl.col("date").cast(pl.Datetime("us", "UTC")) + pl.duration(hours=7)).alias("as_of")
        )
        .select("store_id", "sku_id", "as_of", "on_hand")
        .sort("store_id", "sku_id", "as_of")
    )


def _stock(rng: np.random.Generator, daily: pl.DataFrame, end: date) -> pl.DataFrame:
    """Current position: roughly zero to two weeks of recent demand on hand, some on order."""
    recent = (
        daily.filter(pl.col("date") > end - timedelta(days=28))
        .group_by("store_id", "sku_id")
        .agg(pl.col("demand").mean().alias("rate"))
    )
    recent = recent.sort("store_id", "sku_id")
    n = recent.height
    cover = rng.uniform(0.0, 14.0, n)
    on_order = np.where(rng.random(n) < 0.2, np.ceil(recent["rate"].to_numpy() * 5), 0)
    as_of = datetime.combine(end, datetime.min.time(), tzinfo=UTC) + timedelta(hours=22)
    return recent.select(
        "store_id",
        "sku_id",
        pl.Series("on_hand", np.floor(recent["rate"].to_numpy() * cover).astype(np.int64)),
        pl.Series("on_order", on_order.astype(np.int64)),
        pl.lit(as_of).alias("as_of"),
    )
